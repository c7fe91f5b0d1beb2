//! The auth service's operations and the identity types every service shares.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::idempotency::Keyed;
use crate::ids::{ProjectId, SessionId, TokenId, UserId};
use crate::page::{Page, PageRequest};
use crate::system::Empty;
use crate::{Operation, ServiceName};

/// A role in one project, weakest first; `Ord` follows strength.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    /// Reads everything in the project.
    Viewer,
    /// Also writes runs, results, artifacts and imports.
    Reporter,
    /// Also manages tokens and members and deletes runs.
    Maintainer,
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Reporter, Role::Maintainer, Role::Owner];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Reporter => "reporter",
            Role::Maintainer => "maintainer",
            Role::Owner => "owner",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| {
                format!("unknown role `{s}` (expected viewer, reporter, maintainer or owner)")
            })
    }
}

/// Who is calling, as established by the gateway. Travels in the `Verdict-Principal`
/// header, which only the gateway sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Principal {
    /// A person signed in with an access token; `session_id` is its refresh family.
    User {
        user_id: UserId,
        session_id: SessionId,
    },
    /// A CI job's API token, bound to one project and one role.
    ApiToken {
        token_id: TokenId,
        project_id: ProjectId,
        role: Role,
    },
}

/// A validated e-mail address: trimmed, lower-cased, one `@`, at most 254 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
pub struct Email(String);

impl Email {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let email = value.trim().to_lowercase();
        let valid = email.len() <= 254
            && email.split('@').count() == 2
            && email.split('@').all(|part| !part.is_empty())
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(Email(email))
        } else {
            Err("must be an e-mail address (one @, no spaces, at most 254 characters)".into())
        }
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.0
    }
}

/// A project's URL name: 2 to 64 of `a-z`, `0-9` and `-`, starting with a letter, not
/// ending with `-`. Starting with a letter keeps slugs apart from ids in paths that
/// accept either.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
pub struct ProjectSlug(String);

impl ProjectSlug {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProjectSlug {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let valid = (2..=64).contains(&value.len())
            && value.starts_with(|c: char| c.is_ascii_lowercase())
            && !value.ends_with('-')
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(ProjectSlug(value))
        } else {
            Err("must be 2 to 64 characters of a-z, 0-9 and -, starting with a letter and not ending with -".into())
        }
    }
}

impl From<ProjectSlug> for String {
    fn from(slug: ProjectSlug) -> Self {
        slug.0
    }
}

/// The longest password accepted anywhere, in bytes: hashing cost grows with length, so
/// a password is bounded before it is ever hashed.
pub const PASSWORD_MAX_BYTES: usize = 1024;

/// A password as submitted, of `MIN` to [`PASSWORD_MAX_BYTES`] bytes. Never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PasswordOf<const MIN: usize>(String);

/// A password being set: 8 to 1024 bytes.
pub type Password = PasswordOf<8>;

/// A password presented at login: at most 1024 bytes. A shorter one than a password can
/// be set to is simply wrong, and gets the same answer as any wrong password.
pub type LoginPassword = PasswordOf<0>;

impl<const MIN: usize> PasswordOf<MIN> {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl<const MIN: usize> fmt::Debug for PasswordOf<MIN> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

impl<const MIN: usize> TryFrom<String> for PasswordOf<MIN> {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        if (MIN..=PASSWORD_MAX_BYTES).contains(&value.len()) {
            Ok(PasswordOf(value))
        } else if MIN == 0 {
            Err(format!("must be at most {PASSWORD_MAX_BYTES} bytes"))
        } else {
            Err(format!("must be {MIN} to {PASSWORD_MAX_BYTES} bytes"))
        }
    }
}

impl<const MIN: usize> From<PasswordOf<MIN>> for String {
    fn from(password: PasswordOf<MIN>) -> Self {
        password.0
    }
}

/// A human-readable name (user, project, token): 1 to 200 characters, no control
/// characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
pub struct DisplayName(String);

impl DisplayName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DisplayName {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let value = value.trim().to_owned();
        if !value.is_empty() && value.chars().count() <= 200 && !value.chars().any(char::is_control)
        {
            Ok(DisplayName(value))
        } else {
            Err("must be 1 to 200 characters without control characters".into())
        }
    }
}

impl From<DisplayName> for String {
    fn from(name: DisplayName) -> Self {
        name.0
    }
}

// ---- messages -------------------------------------------------------------------

/// What a person signs in with (the body of `POST /auth/login`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    pub email: Email,
    #[cfg_attr(feature = "openapi", schema(value_type = String, max_length = 1024))]
    pub password: LoginPassword,
}

/// A sign-in as the gateway passes it on: the credentials and where they came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginAttempt {
    #[serde(flatten)]
    pub credentials: LoginRequest,
    /// The client's address as the gateway established it (behind trusted proxies, the
    /// one they name); failed logins are counted per account and address. Absent from
    /// older gateways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// What login and refresh answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

/// The claims of an access token: what the auth service signs and what every gateway
/// verifies before it admits a request, so the two cannot drift apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: UserId,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub typ: AccessTokenType,
    /// The sign-in (refresh family) this token belongs to, so logout can deny it.
    pub sid: SessionId,
    /// Whether the user is an administrator, so gateways can admit them to operations
    /// without asking the auth service (which may be the one that is down). Tokens
    /// issued before the claim existed lack it: their holders are not administrators
    /// until they sign in again.
    #[serde(default)]
    pub adm: bool,
}

/// The `typ` claim of an access token. It has one value, so a token meant for anything
/// else does not decode as an access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessTokenType {
    Access,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectRole {
    pub id: ProjectId,
    pub slug: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub projects: Vec<ProjectRole>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateUser {
    pub email: Email,
    pub name: DisplayName,
    #[cfg_attr(feature = "openapi", schema(value_type = String, min_length = 8, max_length = 1024))]
    pub password: Password,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateUser {
    pub user_id: UserId,
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateProject {
    pub slug: ProjectSlug,
    pub name: DisplayName,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Project {
    pub id: ProjectId,
    pub slug: String,
    pub name: String,
    pub created_at: String,
}

/// A project named by id or slug, as in `/projects/{project}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectRef {
    pub project: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListProjects {
    #[serde(flatten)]
    pub page: PageRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PutMember {
    pub project: String,
    pub user_id: UserId,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    pub project_id: ProjectId,
    pub user_id: UserId,
    pub role: Role,
}

/// A member added by e-mail address (the body of `POST /projects/{project}/members`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewMember {
    pub email: Email,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddMember {
    pub project: String,
    #[serde(flatten)]
    pub member: NewMember,
}

/// A member with who they are, as maintainers see the member list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberInfo {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListMembers {
    pub project: String,
    #[serde(flatten)]
    pub page: PageRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListUsers {
    #[serde(flatten)]
    pub page: PageRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeleteMember {
    pub project: String,
    pub user_id: UserId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateToken {
    pub project: String,
    pub name: DisplayName,
    pub role: Role,
    /// RFC 3339; `None` never expires. Required, and no later than the caller's own
    /// expiry, when the caller is an API token that expires (400 otherwise).
    pub expires_at: Option<String>,
}

/// A new API token; `token` is shown here only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    pub id: TokenId,
    pub name: String,
    pub role: Role,
    pub token: String,
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    pub id: TokenId,
    pub name: String,
    pub role: Role,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListTokens {
    pub project: String,
    #[serde(flatten)]
    pub page: PageRequest,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevokeToken {
    pub project: String,
    pub token_id: TokenId,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyApiToken {
    pub token: String,
}

/// What an API token grants, for the gateway to cache briefly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiTokenGrant {
    pub token_id: TokenId,
    pub project_id: ProjectId,
    pub role: Role,
    /// Unix seconds; `None` never expires.
    pub expires_at: Option<i64>,
}

/// The caller's access to one project, for services that check scope themselves.
/// Whose role, in which project (an id or a slug).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorize {
    pub principal: Principal,
    pub project: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectAccess {
    pub project_id: ProjectId,
    pub slug: String,
    pub role: Role,
}

/// The public signing keys, as a JSON Web Key Set document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwks {
    pub keys: Vec<serde_json::Value>,
}

/// The signing key now in use, after a rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RotatedKey {
    pub kid: String,
}

// ---- operations -----------------------------------------------------------------

const AUTH: ServiceName = ServiceName::Auth;

pub const LOGIN: Operation<LoginAttempt, TokenPair> = Operation::new(AUTH, "login");
pub const REFRESH: Operation<RefreshRequest, TokenPair> = Operation::new(AUTH, "refresh");
pub const LOGOUT: Operation<RefreshRequest, Empty> = Operation::new(AUTH, "logout");
pub const ME: Operation<Empty, Me> = Operation::query(AUTH, "me");
pub const CREATE_USER: Operation<Keyed<CreateUser>, User> = Operation::new(AUTH, "create_user");
pub const UPDATE_USER: Operation<UpdateUser, User> = Operation::new(AUTH, "update_user");
pub const CREATE_PROJECT: Operation<Keyed<CreateProject>, Project> =
    Operation::new(AUTH, "create_project");
pub const LIST_PROJECTS: Operation<ListProjects, Page<Project>> =
    Operation::query(AUTH, "list_projects");
pub const GET_PROJECT: Operation<ProjectRef, Project> = Operation::query(AUTH, "get_project");
pub const PUT_MEMBER: Operation<PutMember, Member> = Operation::new(AUTH, "put_member");
pub const DELETE_MEMBER: Operation<DeleteMember, Empty> = Operation::new(AUTH, "delete_member");
/// Maintainer: adds (or changes) a member named by e-mail address; 404 when no user has it.
pub const ADD_MEMBER: Operation<AddMember, Member> = Operation::new(AUTH, "add_member");
/// Maintainer: a project's members with their e-mail addresses and names, by user id.
pub const LIST_MEMBERS: Operation<ListMembers, Page<MemberInfo>> =
    Operation::query(AUTH, "list_members");
/// Admin only: every user, by id.
pub const LIST_USERS: Operation<ListUsers, Page<User>> = Operation::query(AUTH, "list_users");
pub const CREATE_TOKEN: Operation<Keyed<CreateToken>, CreatedToken> =
    Operation::new(AUTH, "create_token");
pub const LIST_TOKENS: Operation<ListTokens, Page<TokenInfo>> =
    Operation::query(AUTH, "list_tokens");
pub const REVOKE_TOKEN: Operation<RevokeToken, Empty> = Operation::new(AUTH, "revoke_token");
/// Gateway only: what an API token grants. No principal.
pub const VERIFY_API_TOKEN: Operation<VerifyApiToken, ApiTokenGrant> =
    Operation::query(AUTH, "verify_api_token");
/// A principal's role in a project (404 when none): every service's own scope check.
/// The principal travels in the body: the asking service learns a role, it does not
/// act as the principal.
pub const AUTHORIZE: Operation<Authorize, ProjectAccess> =
    Operation::service_query(AUTH, "authorize");
pub const JWKS: Operation<Empty, Jwks> = Operation::query(AUTH, "jwks");
/// Admin only: retire the current signing key and sign with a new one.
pub const ROTATE_KEYS: Operation<Empty, RotatedKey> = Operation::new(AUTH, "rotate_keys");

// ---- revocation and key events ----------------------------------------------------

/// The longest a gateway may trust a cached API token grant without asking auth again.
pub const API_TOKEN_CACHE_SECS: i64 = 30;

/// The longest a gateway may keep using a grant auth confirmed, while auth cannot be
/// asked (stopped, restarting): CI jobs keep reporting through an auth outage.
/// Revocations still apply at once (they come through JetStream, not from auth), and
/// stay in the bucket at least this long past their tokens' expiry.
pub const API_TOKEN_STALE_SECS: i64 = 300;

/// Published (core NATS) when the signing keys change; gateways refetch the JWKS.
pub const KEYS_CHANGED_SUBJECT: &str = "verdict.auth.keys_changed";

/// What a revocation denies, until `until` (Unix seconds), after which every token it
/// could concern has expired anyway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revocation {
    pub target: RevocationTarget,
    /// Unix seconds: tokens issued at or before this instant are denied.
    pub revoked_at: i64,
    pub until: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RevocationTarget {
    /// One sign-in (refresh family) and every access token issued from it.
    Session(SessionId),
    /// Every token of a user issued before `revoked_at` (user disabled).
    User(UserId),
    /// One API token.
    ApiToken(TokenId),
}

impl RevocationTarget {
    /// The key in the [`crate::streams::REVOCATIONS`] bucket.
    pub fn key(&self) -> String {
        match self {
            RevocationTarget::Session(id) => format!("session.{id}"),
            RevocationTarget::User(id) => format!("user.{id}"),
            RevocationTarget::ApiToken(id) => format!("token.{id}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_from_viewer_to_owner() {
        assert!(Role::Viewer < Role::Reporter);
        assert!(Role::Reporter < Role::Maintainer);
        assert!(Role::Maintainer < Role::Owner);
    }

    #[test]
    fn roles_parse_from_their_names_only() {
        assert_eq!("maintainer".parse::<Role>().unwrap(), Role::Maintainer);
        assert!("admin".parse::<Role>().is_err());
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        let email = Email::try_from(" Alice@Example.COM ".to_owned()).unwrap();
        assert_eq!(email.as_str(), "alice@example.com");
        for bad in ["", "alice", "a@b@c", "@example.com", "alice@", "a b@c.d"] {
            assert!(Email::try_from(bad.to_owned()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn slugs_accept_lowercase_words_and_refuse_the_rest() {
        for good in ["web", "web-app-2", "a1"] {
            assert!(ProjectSlug::try_from(good.to_owned()).is_ok(), "{good:?}");
        }
        for bad in [
            "w",
            "Web",
            "-web",
            "web-",
            "1web",
            "we b",
            "wéb",
            &"a".repeat(65),
        ] {
            assert!(ProjectSlug::try_from(bad.to_owned()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_slug_can_never_look_like_an_id() {
        assert!(ProjectSlug::try_from("0191c0de-0000-7000-8000-000000000000".to_owned()).is_err());
    }

    #[test]
    fn passwords_have_bounds_and_hide_in_debug_output() {
        assert!(Password::try_from("short".to_owned()).is_err());
        assert!(Password::try_from("x".repeat(PASSWORD_MAX_BYTES + 1)).is_err());
        let password = Password::try_from("correct horse".to_owned()).unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }

    #[test]
    fn a_login_password_is_only_bounded_above() {
        assert!(LoginPassword::try_from(String::new()).is_ok());
        assert!(LoginPassword::try_from("short".to_owned()).is_ok());
        let error = LoginPassword::try_from("x".repeat(PASSWORD_MAX_BYTES + 1)).unwrap_err();
        assert_eq!(error, "must be at most 1024 bytes");
    }

    #[test]
    fn a_principal_round_trips_through_json() {
        let principal = Principal::ApiToken {
            token_id: TokenId::generate(),
            project_id: ProjectId::generate(),
            role: Role::Reporter,
        };
        let json = serde_json::to_string(&principal).unwrap();
        assert!(json.contains(r#""kind":"api_token""#));
        assert_eq!(serde_json::from_str::<Principal>(&json).unwrap(), principal);
    }

    #[test]
    fn revocation_keys_are_valid_kv_keys() {
        let key = RevocationTarget::Session(SessionId::generate()).key();
        assert!(key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.=".contains(c)));
    }

    fn claims_of_type(typ: &str) -> serde_json::Value {
        serde_json::json!({
            "iss": "verdict", "aud": "verdict", "exp": 2, "iat": 1, "jti": "j", "typ": typ,
            "sub": "0192a24d-0000-7000-8000-000000000001",
            "sid": "0192a24d-0000-7000-8000-000000000002",
        })
    }

    #[test]
    fn claims_of_an_access_token_decode_and_leave_out_administration_unless_they_say_so() {
        let claims: AccessClaims = serde_json::from_value(claims_of_type("access")).unwrap();
        assert_eq!(claims.typ, AccessTokenType::Access);
        assert!(!claims.adm);
    }

    #[test]
    fn claims_of_another_token_type_do_not_decode_as_access_claims() {
        assert!(serde_json::from_value::<AccessClaims>(claims_of_type("refresh")).is_err());
    }
}
