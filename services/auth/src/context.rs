//! What every auth operation works with, and the lookups they share.

use std::sync::{Arc, RwLock};

use verdict_bus::jetstream_api::kv::CreateErrorKind;
use verdict_bus::{Client, KvStore};
use verdict_contracts::auth::{
    Principal, Revocation, RevocationTarget, Role, API_TOKEN_STALE_SECS,
};
use verdict_contracts::Timestamp;
use verdict_store::Store;

use crate::access::Caller;
use crate::config::{LoginPolicy, TokenSettings};
use crate::keys::KeyRing;
use crate::passwords::Hasher;
use crate::store::{self, ProjectRow};
use crate::Error;
use verdict_store::at_rest::AtRest;

/// How a revocation is written to the bucket gateways watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationWrite {
    /// Unless the bucket holds one for the target already: a repeated logout or reuse
    /// writes nothing, and one whose first publication failed is written on a retry.
    IfAbsent,
    /// Over what the bucket holds: the target was revoked anew (a user disabled again
    /// after being enabled).
    Replace,
}

/// The auth service's state. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    pub store: Store,
    pub keys: Arc<RwLock<KeyRing>>,
    pub tokens: TokenSettings,
    pub login: LoginPolicy,
    /// Every password hash goes through it: bounded in number at once.
    pub hasher: Hasher,
    /// How private signing keys are kept in the database.
    pub at_rest: AtRest,
    pub revocations: KvStore,
    pub client: Client,
}

impl Auth {
    /// The caller behind a principal, refused when the user is gone or disabled, the
    /// session revoked, or the API token revoked.
    pub async fn caller(&self, principal: Principal) -> Result<Caller, Error> {
        self.store
            .read(move |conn| {
                let now = Timestamp::now().secs();
                match principal {
                    Principal::User {
                        user_id,
                        session_id,
                    } => {
                        let user = store::user_by_id(conn, user_id)?
                            .filter(|user| !user.disabled)
                            .ok_or(Error::Unauthorized("the account is disabled or gone"))?;
                        if !store::session_is_active(conn, session_id, now)? {
                            return Err(Error::Unauthorized("the session has ended"));
                        }
                        Ok(Caller::User {
                            user_id: user.id,
                            is_admin: user.is_admin,
                        })
                    }
                    Principal::ApiToken {
                        token_id,
                        project_id,
                        role,
                    } => {
                        let token = store::api_token_in_project(conn, project_id, token_id)?
                            .filter(|token| {
                                token.revoked_at.is_none()
                                    && token.expires_at.is_none_or(|at| at > now)
                            })
                            .ok_or(Error::Unauthorized("the API token is revoked or expired"))?;
                        Ok(Caller::ApiToken {
                            project_id,
                            role,
                            expires_at: token.expires_at,
                        })
                    }
                }
            })
            .await
    }

    /// A project by id or slug with the caller's role in it; an unknown project and one
    /// the caller has no role in look the same.
    pub async fn project_for(
        &self,
        caller: &Caller,
        reference: String,
    ) -> Result<(ProjectRow, Option<Role>), Error> {
        let caller = caller.clone();
        self.store
            .read(move |conn| {
                let project =
                    store::project_by_ref(conn, &reference)?.ok_or(Error::NotFound("project"))?;
                let membership = match caller.user_id() {
                    Some(user_id) => store::membership(conn, project.id, user_id)?,
                    None => None,
                };
                let role = caller.role_in(project.id, membership);
                Ok((project, role))
            })
            .await
    }

    /// Tells every gateway to deny what `target` names (revoked at `revoked_at`) until
    /// its tokens have expired. Each write makes every live socket on every gateway
    /// check its token again, so `write` says whether one already in the bucket stands.
    pub async fn publish_revocation(
        &self,
        target: RevocationTarget,
        revoked_at: i64,
        write: RevocationWrite,
    ) -> Result<(), Error> {
        let Some(value) = self.revocation(&target, revoked_at)? else {
            return Ok(());
        };
        let written = match write {
            RevocationWrite::IfAbsent => self.revocations.create(target.key(), value).await,
            RevocationWrite::Replace => self
                .revocations
                .put(target.key(), value)
                .await
                .map_err(Into::into),
        };
        match written {
            Ok(_) => Ok(()),
            Err(err) if err.kind() == CreateErrorKind::AlreadyExists => Ok(()),
            Err(err) => Err(Error::Revocation(err.into())),
        }
    }

    /// The bucket value of a revocation; `None` once every token it could concern has
    /// expired, when there is nothing left to deny.
    fn revocation(
        &self,
        target: &RevocationTarget,
        revoked_at: i64,
    ) -> Result<Option<bytes::Bytes>, Error> {
        let until = revoked_at + self.tokens.access_ttl.as_secs() as i64 + API_TOKEN_STALE_SECS;
        if until < Timestamp::now().secs() {
            return Ok(None);
        }
        let revocation = Revocation {
            target: target.clone(),
            revoked_at,
            until,
        };
        serde_json::to_vec(&revocation)
            .map(|value| Some(value.into()))
            .map_err(|err| Error::Revocation(err.into()))
    }
}
