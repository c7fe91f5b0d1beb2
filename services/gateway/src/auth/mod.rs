//! Who is calling: access tokens verified locally, API tokens through the auth service
//! (cached), both checked against the deny list.

mod api_tokens;
mod jwt;
mod revocations;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use verdict_bus::{Bus, BusError, RequestError};
use verdict_contracts::auth::{
    self, Principal, RevocationTarget, VerifyApiToken, KEYS_CHANGED_SUBJECT,
};
use verdict_contracts::streams;
use verdict_contracts::ErrorCode;
use verdict_contracts::Timestamp;

pub use jwt::JwtError;

/// How long a starting gateway waits for the revocation list before it serves anyway
/// (with a warning): services still check sessions and users themselves.
const REVOCATIONS_LOAD_LIMIT: Duration = Duration::from_secs(10);

/// Why a request is not authenticated. The detail is for logs; clients get one message.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error(transparent)]
    Jwt(#[from] JwtError),
    #[error("token revoked")]
    Revoked,
    #[error("invalid API token")]
    InvalidApiToken,
    #[error("auth service unavailable: {0}")]
    Unavailable(RequestError),
}

/// Who is calling.
pub struct Identity {
    pub principal: Principal,
    /// A user whose access token says they administer this installation; API tokens
    /// never do.
    pub is_admin: bool,
}

pub struct Authenticator {
    bus: Bus,
    jwt: jwt::JwtVerifier,
    deny: Arc<revocations::DenyList>,
    grants: Arc<api_tokens::GrantCache>,
    /// Bumped after each revocation, so live sockets check their token again.
    revoked: tokio::sync::watch::Sender<u64>,
}

impl Authenticator {
    /// Starts following revocations and key changes until `shutdown`.
    pub async fn start(
        bus: Bus,
        issuer: &str,
        audience: &str,
        replicas: usize,
        shutdown: CancellationToken,
    ) -> Result<Arc<Self>, BusError> {
        let bucket =
            verdict_bus::streams::ensure_bucket(bus.client(), &streams::REVOCATIONS, replicas)
                .await?;
        let authenticator = Arc::new(Self {
            jwt: jwt::JwtVerifier::new(bus.clone(), issuer, audience),
            bus: bus.clone(),
            deny: Arc::default(),
            grants: Arc::default(),
            revoked: tokio::sync::watch::Sender::new(0),
        });
        let grants = authenticator.grants.clone();
        let revoked = authenticator.revoked.clone();
        let (caught_up, mut loaded) = tokio::sync::watch::channel(false);
        tokio::spawn(revocations::watch(
            bucket,
            authenticator.deny.clone(),
            move |revocation| {
                if let RevocationTarget::ApiToken(id) = &revocation.target {
                    grants.evict_token(*id);
                }
                revoked.send_modify(|count| *count += 1);
            },
            caught_up,
            shutdown.clone(),
        ));
        // Serving before the revocations are loaded would let revoked tokens in here.
        let loading = tokio::time::timeout(REVOCATIONS_LOAD_LIMIT, loaded.wait_for(|done| *done));
        if !matches!(loading.await, Ok(Ok(_))) {
            tracing::warn!(
                "the revocation list did not load within {REVOCATIONS_LOAD_LIMIT:?}; serving while it loads"
            );
        }
        let mut key_changes =
            bus.client()
                .subscribe(KEYS_CHANGED_SUBJECT)
                .await
                .map_err(|err| BusError::Register {
                    what: KEYS_CHANGED_SUBJECT.into(),
                    reason: err.into(),
                })?;
        let keys = authenticator.clone();
        tokio::spawn(async move {
            use futures::StreamExt;
            // Fetched now rather than at the first token, so that access tokens are
            // verified even if auth goes away before one arrives.
            let _ = keys.jwt.refetch(true).await;
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    change = key_changes.next() => match change {
                        Some(_) => { let _ = keys.jwt.refetch(true).await; }
                        None => return,
                    },
                }
            }
        });
        Ok(authenticator)
    }

    /// Changes after every revocation.
    pub fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revoked.subscribe()
    }

    /// The principal behind an `Authorization` header value.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        self.identify(authorization)
            .await
            .map(|identity| identity.principal)
    }

    /// The principal behind an `Authorization` header value, and whether it is an
    /// administrator.
    pub async fn identify(&self, authorization: Option<&str>) -> Result<Identity, AuthError> {
        let token = authorization
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(AuthError::Missing)?;
        let now = Timestamp::now().secs();
        if token.starts_with("vdt_") {
            let grant = self.api_token(token).await?;
            if self
                .deny
                .denies(&RevocationTarget::ApiToken(grant.token_id), i64::MIN, now)
                || grant.expires_at.is_some_and(|at| at <= now)
            {
                return Err(AuthError::Revoked);
            }
            return Ok(Identity {
                principal: Principal::ApiToken {
                    token_id: grant.token_id,
                    project_id: grant.project_id,
                    role: grant.role,
                },
                is_admin: false,
            });
        }
        let claims = self.jwt.verify(token).await?;
        let denied = self
            .deny
            .denies(&RevocationTarget::Session(claims.sid), claims.iat, now)
            || self
                .deny
                .denies(&RevocationTarget::User(claims.sub), claims.iat, now);
        if denied {
            return Err(AuthError::Revoked);
        }
        Ok(Identity {
            principal: Principal::User {
                user_id: claims.sub,
                session_id: claims.sid,
            },
            is_admin: claims.adm,
        })
    }

    async fn api_token(&self, token: &str) -> Result<auth::ApiTokenGrant, AuthError> {
        if let Some(grant) = self.grants.get(token) {
            return Ok(grant);
        }
        let request = VerifyApiToken {
            token: token.to_owned(),
        };
        match self.bus.request(&auth::VERIFY_API_TOKEN, &request).await {
            Ok(grant) => {
                self.grants.put(token, grant.clone());
                Ok(grant)
            }
            Err(RequestError::Service(error)) if error.code == ErrorCode::Unauthorized => {
                Err(AuthError::InvalidApiToken)
            }
            Err(other) => match self.grants.get_while_unconfirmable(token) {
                Some(grant) => {
                    tracing::warn!(error = %other, "auth unavailable; using an API token grant it confirmed earlier");
                    Ok(grant)
                }
                None => Err(AuthError::Unavailable(other)),
            },
        }
    }
}
