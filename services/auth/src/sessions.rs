//! Sign-in: login, refresh-token rotation with reuse detection, logout.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use verdict_contracts::auth::{
    AccessClaims, AccessTokenType, LoginAttempt, RefreshRequest, RevocationTarget, TokenPair,
};
use verdict_contracts::ids::SessionId;
use verdict_contracts::Timestamp;

use crate::config::LoginPolicy;
use crate::context::{Auth, RevocationWrite};
use crate::store::{self, UserRow};
use crate::{secrets, Error};

/// The longest a source of failed logins stays locked.
const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);

/// How long failed logins are remembered after the last one.
const FAILURE_MEMORY: Duration = Duration::from_secs(24 * 60 * 60);

/// Signs in with a password; every attempt is counted by its outcome.
pub async fn login(auth: &Auth, attempt: LoginAttempt) -> Result<TokenPair, Error> {
    let result = password_login(auth, attempt).await;
    crate::metrics::login(&result);
    result
}

async fn password_login(auth: &Auth, attempt: LoginAttempt) -> Result<TokenPair, Error> {
    let credentials = attempt.credentials;
    let source = Source {
        email: credentials.email.as_str().to_owned(),
        client: client_key(attempt.client_address),
    };
    let looked_up = source.clone();
    let (locked_until, user) = auth
        .store
        .read(move |conn| {
            let locked_until =
                store::login_locked_until(conn, &looked_up.email, &looked_up.client)?;
            let user = store::user_by_email(conn, &looked_up.email)?;
            Ok::<_, Error>((locked_until, user))
        })
        .await?;
    let now = Timestamp::now().secs();
    if let Some(locked_until) = locked_until.filter(|until| *until > now) {
        return Err(Error::LockedOut {
            retry_after: (locked_until - now) as u64,
        });
    }
    // An unknown e-mail costs a hash too, and counts as a failure like a wrong password:
    // neither the answer nor its timing tells whether the account exists.
    let password = credentials.password.expose().to_owned();
    let verified = match user {
        Some(user) => auth
            .hasher
            .verify(password, user.password_hash.clone())
            .await?
            .then_some(user),
        None => {
            auth.hasher.verify_nothing(password).await?;
            None
        }
    };
    let Some(user) = verified else {
        record_failure(auth, source).await?;
        return Err(Error::InvalidCredentials);
    };
    if user.disabled {
        return Err(Error::Unauthorized("the account is disabled"));
    }
    start_session(auth, user, source).await
}

/// Where a login comes from: the e-mail it names and the client's address key.
#[derive(Debug, Clone)]
struct Source {
    email: String,
    client: String,
}

/// The key failed logins from `address` are counted under. An IPv6 client counts by
/// its /64, the block one subscriber is usually given, so hopping between its addresses
/// gains nothing; logins relayed by an older gateway, which names no address, share one.
fn client_key(address: Option<IpAddr>) -> String {
    match address.map(|address| address.to_canonical()) {
        Some(IpAddr::V6(v6)) => {
            let [a, b, c, d, ..] = v6.segments();
            format!("{}/64", Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
        Some(v4) => v4.to_string(),
        None => String::new(),
    }
}

/// Counts a failed login and locks its source when that makes too many in a row.
async fn record_failure(auth: &Auth, source: Source) -> Result<(), Error> {
    let policy = auth.login;
    auth.store
        .write(move |conn| {
            let now = Timestamp::now().secs();
            let tx = conn.transaction()?;
            let failures = store::count_login_failure(&tx, &source.email, &source.client, now)?;
            if let Some(until) = lock_after(policy, failures, now) {
                store::lock_login(&tx, &source.email, &source.client, until)?;
            }
            store::forget_login_failures_before(&tx, now - FAILURE_MEMORY.as_secs() as i64)?;
            tx.commit()?;
            Ok::<_, Error>(())
        })
        .await
}

/// Until when a source with `failures` in a row is locked: from `max_failures` on,
/// `lockout` doubled for each further failure, at most 15 minutes. `now` is truncated
/// to the second, so the lock ends a second later than `now + lock`: otherwise a lock
/// set late in a second would be up to a second short.
fn lock_after(policy: LoginPolicy, failures: u32, now: i64) -> Option<i64> {
    if failures < policy.max_failures {
        return None;
    }
    let doublings = (failures - policy.max_failures).min(16);
    let lock = policy
        .lockout
        .saturating_mul(1 << doublings)
        .min(MAX_LOCKOUT);
    Some(now + lock.as_secs().max(1) as i64 + 1)
}

async fn start_session(auth: &Auth, user: UserRow, source: Source) -> Result<TokenPair, Error> {
    let now = Timestamp::now().secs();
    let session_id = SessionId::generate();
    let refresh = secrets::new_secret(secrets::REFRESH_PREFIX);
    let expires_at = now + auth.tokens.refresh_ttl.as_secs() as i64;
    let (user_id, sid, hash) = (user.id, session_id, refresh.hash);
    auth.store
        .write(move |conn| {
            let tx = conn.transaction()?;
            store::clear_login_failures(&tx, &source.email, &source.client)?;
            store::insert_session(&tx, sid, user_id, now, expires_at)?;
            store::insert_refresh_token(&tx, &hash, sid, now, expires_at)?;
            tx.commit()?;
            Ok::<_, Error>(())
        })
        .await?;
    token_pair(auth, &user, session_id, refresh.plain, now)
}

fn token_pair(
    auth: &Auth,
    user: &UserRow,
    session_id: SessionId,
    refresh_token: String,
    now: i64,
) -> Result<TokenPair, Error> {
    let ttl = auth.tokens.access_ttl.as_secs();
    let claims = AccessClaims {
        iss: auth.tokens.issuer.clone(),
        aud: auth.tokens.audience.clone(),
        sub: user.id,
        exp: now + ttl as i64,
        iat: now,
        jti: uuid::Uuid::now_v7().to_string(),
        typ: AccessTokenType::Access,
        sid: session_id,
        adm: user.is_admin,
    };
    let access_token = auth
        .keys
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .sign(&claims)?;
    Ok(TokenPair {
        access_token,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: ttl,
    })
}

/// What presenting a refresh token led to.
enum Rotation {
    Rotated {
        user: UserRow,
        session_id: SessionId,
    },
    /// A spent token came back: someone holds a copy. The whole session is revoked
    /// (at `revoked_at`, earlier when it already was).
    ReuseDetected {
        session_id: SessionId,
        revoked_at: i64,
    },
    Refused,
}

pub async fn refresh(auth: &Auth, request: RefreshRequest) -> Result<TokenPair, Error> {
    let presented = secrets::hash(&request.refresh_token);
    let next = secrets::new_secret(secrets::REFRESH_PREFIX);
    let next_hash = next.hash.clone();
    let now = Timestamp::now().secs();
    let rotation = auth
        .store
        .write(move |conn| {
            let tx = conn.transaction()?;
            let Some(token) = store::refresh_token(&tx, &presented)? else {
                return Ok(Rotation::Refused);
            };
            if token.spent {
                let revoked_at = store::revoke_session(&tx, token.session_id, now)?;
                tx.commit()?;
                return Ok(Rotation::ReuseDetected {
                    session_id: token.session_id,
                    revoked_at: revoked_at.unwrap_or(now),
                });
            }
            let user = store::user_by_id(&tx, token.user_id)?.filter(|user| !user.disabled);
            let expired = token.expires_at <= now || token.session_expires_at <= now;
            let Some(user) = user.filter(|_| !token.session_revoked && !expired) else {
                return Ok(Rotation::Refused);
            };
            store::spend_refresh_token(&tx, &presented, now)?;
            // A sign-in lasts the refresh token lifetime from the login, however often
            // it is refreshed: the successor expires with the session.
            store::insert_refresh_token(
                &tx,
                &next_hash,
                token.session_id,
                now,
                token.session_expires_at,
            )?;
            tx.commit()?;
            Ok::<_, Error>(Rotation::Rotated {
                user,
                session_id: token.session_id,
            })
        })
        .await?;
    match rotation {
        Rotation::Rotated { user, session_id } => {
            token_pair(auth, &user, session_id, next.plain, now)
        }
        Rotation::ReuseDetected {
            session_id,
            revoked_at,
        } => {
            tracing::warn!(%session_id, "refresh token reused; session revoked");
            auth.publish_revocation(
                RevocationTarget::Session(session_id),
                revoked_at,
                RevocationWrite::IfAbsent,
            )
            .await?;
            Err(Error::Unauthorized("refresh token is no longer valid"))
        }
        Rotation::Refused => Err(Error::Unauthorized("refresh token is no longer valid")),
    }
}

/// Ends the session the refresh token belongs to. Unknown tokens are ignored, so the
/// answer tells nothing about them.
pub async fn logout(auth: &Auth, request: RefreshRequest) -> Result<(), Error> {
    let presented = secrets::hash(&request.refresh_token);
    let now = Timestamp::now().secs();
    let revoked = auth
        .store
        .write(move |conn| {
            let Some(token) = store::refresh_token(conn, &presented)? else {
                return Ok(None);
            };
            let revoked_at = store::revoke_session(conn, token.session_id, now)?;
            Ok::<_, Error>(revoked_at.map(|at| (token.session_id, at)))
        })
        .await?;
    if let Some((session_id, revoked_at)) = revoked {
        auth.publish_revocation(
            RevocationTarget::Session(session_id),
            revoked_at,
            RevocationWrite::IfAbsent,
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LoginPolicy = LoginPolicy {
        max_failures: 3,
        lockout: Duration::from_secs(10),
    };

    #[test]
    fn failures_below_the_threshold_do_not_lock() {
        assert_eq!(lock_after(POLICY, 1, 100), None);
        assert_eq!(lock_after(POLICY, 2, 100), None);
    }

    #[test]
    fn the_threshold_locks_and_each_further_failure_doubles_the_lock() {
        assert_eq!(lock_after(POLICY, 3, 100), Some(111));
        assert_eq!(lock_after(POLICY, 4, 100), Some(121));
        assert_eq!(lock_after(POLICY, 5, 100), Some(141));
    }

    #[test]
    fn the_lock_never_exceeds_fifteen_minutes() {
        assert_eq!(lock_after(POLICY, 1001, 0), Some(901));
    }

    #[test]
    fn ipv4_clients_count_by_address_and_ipv6_clients_by_their_64() {
        let key = |text: &str| client_key(Some(text.parse().unwrap()));
        assert_eq!(key("203.0.113.7"), "203.0.113.7");
        assert_eq!(key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:bbbb::9"), key("2001:db8:1:2:aaaa::1"));
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(client_key(None), "");
    }
}
