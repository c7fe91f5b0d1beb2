//! Who may do what in a project. Plain rules, no I/O: the callers look up the facts.

use verdict_contracts::auth::Role;
use verdict_contracts::ids::{ProjectId, UserId};

use crate::Error;

/// The caller as the auth service sees it after loading the user (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    User {
        user_id: UserId,
        is_admin: bool,
    },
    ApiToken {
        project_id: ProjectId,
        role: Role,
        /// Unix seconds; `None` never expires.
        expires_at: Option<i64>,
    },
}

impl Caller {
    /// The caller's role in `project_id`, given the user's membership there. Admins act
    /// as owners everywhere; an API token only has a role in its own project.
    pub fn role_in(&self, project_id: ProjectId, membership: Option<Role>) -> Option<Role> {
        match self {
            Caller::User { is_admin: true, .. } => Some(Role::Owner),
            Caller::User { .. } => membership,
            Caller::ApiToken {
                project_id: own,
                role,
                ..
            } => (*own == project_id).then_some(*role),
        }
    }

    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Caller::User { user_id, .. } => Some(*user_id),
            Caller::ApiToken { .. } => None,
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Caller::User { is_admin: true, .. })
    }

    /// When the caller's own credential stops working, if it ever does: an API token's
    /// expiry. A signed-in user's credential is renewed by refreshing.
    pub fn expires_at(&self) -> Option<i64> {
        match self {
            Caller::ApiToken { expires_at, .. } => *expires_at,
            Caller::User { .. } => None,
        }
    }
}

/// Requires `needed` in a project. No role at all is "not found": a caller must not
/// learn that a project it cannot see exists.
pub fn require(role: Option<Role>, needed: Role) -> Result<Role, Error> {
    match role {
        None => Err(Error::NotFound("project")),
        Some(role) if role >= needed => Ok(role),
        Some(_) => Err(Error::Forbidden(
            "your role in this project does not allow this",
        )),
    }
}

/// Whether a caller with `own` role may set someone from `current` to `wanted`: never
/// above their own role, and only an owner touches an owner.
pub fn may_assign(own: Role, current: Option<Role>, wanted: Role) -> Result<(), Error> {
    if wanted > own {
        return Err(Error::Forbidden("you cannot grant a role above your own"));
    }
    if current == Some(Role::Owner) && own < Role::Owner {
        return Err(Error::Forbidden("only an owner can change an owner"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(is_admin: bool) -> Caller {
        Caller::User {
            user_id: UserId::generate(),
            is_admin,
        }
    }

    #[test]
    fn a_member_has_their_membership_role() {
        assert_eq!(
            user(false).role_in(ProjectId::generate(), Some(Role::Reporter)),
            Some(Role::Reporter)
        );
        assert_eq!(user(false).role_in(ProjectId::generate(), None), None);
    }

    #[test]
    fn admins_are_owners_everywhere() {
        assert_eq!(
            user(true).role_in(ProjectId::generate(), None),
            Some(Role::Owner)
        );
    }

    #[test]
    fn an_api_token_has_its_role_in_its_own_project_only() {
        let own = ProjectId::generate();
        let token = Caller::ApiToken {
            project_id: own,
            role: Role::Reporter,
            expires_at: None,
        };
        assert_eq!(token.role_in(own, None), Some(Role::Reporter));
        let other = ProjectId::generate();
        assert_eq!(token.role_in(other, Some(Role::Owner)), None);
    }

    #[test]
    fn no_role_is_not_found_and_a_weak_role_is_forbidden() {
        assert!(matches!(
            require(None, Role::Viewer),
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            require(Some(Role::Viewer), Role::Maintainer),
            Err(Error::Forbidden(_))
        ));
        assert_eq!(
            require(Some(Role::Owner), Role::Maintainer).unwrap(),
            Role::Owner
        );
    }

    #[test]
    fn maintainers_cannot_grant_owner_or_demote_owners() {
        assert!(may_assign(Role::Maintainer, None, Role::Owner).is_err());
        assert!(may_assign(Role::Maintainer, Some(Role::Owner), Role::Viewer).is_err());
        assert!(may_assign(Role::Maintainer, Some(Role::Viewer), Role::Maintainer).is_ok());
        assert!(may_assign(Role::Owner, Some(Role::Owner), Role::Viewer).is_ok());
    }
}
