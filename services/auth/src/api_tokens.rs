//! API tokens for CI: one project, one role, shown once, stored hashed, revocable.

use verdict_contracts::auth::{
    ApiTokenGrant, CreateToken, CreatedToken, ListTokens, RevocationTarget, RevokeToken, Role,
    TokenInfo, VerifyApiToken,
};
use verdict_contracts::ids::TokenId;
use verdict_contracts::page::{encode_cursor, Page};
use verdict_contracts::Timestamp;

use crate::access::{self, Caller};
use crate::context::{Auth, RevocationWrite};
use crate::store::{self, ApiTokenRow};
use crate::{keyed, secrets, Error};
use verdict_store::idempotency::KeyedRequest;

fn token_out(token: ApiTokenRow) -> TokenInfo {
    TokenInfo {
        id: token.id,
        name: token.name,
        role: token.role,
        created_at: Timestamp::from_secs(token.created_at).to_rfc3339(),
        expires_at: token
            .expires_at
            .map(|at| Timestamp::from_secs(at).to_rfc3339()),
        last_used_at: token
            .last_used_at
            .map(|at| Timestamp::from_secs(at).to_rfc3339()),
    }
}

pub async fn create(
    auth: &Auth,
    caller: Caller,
    request: CreateToken,
    keyed: Option<KeyedRequest>,
) -> Result<CreatedToken, Error> {
    let (project, role) = auth.project_for(&caller, request.project).await?;
    let own = access::require(role, Role::Maintainer)?;
    if request.role > own {
        return Err(Error::Forbidden(
            "a token cannot have a role above your own",
        ));
    }
    let now = Timestamp::now().secs();
    let expires_at = match &request.expires_at {
        Some(text) => {
            let at = Timestamp::parse_rfc3339(text)
                .map(Timestamp::secs)
                .ok_or_else(|| Error::BadRequest("expires_at: must be an RFC 3339 time".into()))?;
            if at <= now {
                return Err(Error::BadRequest(
                    "expires_at: must be in the future".into(),
                ));
            }
            Some(at)
        }
        None => None,
    };
    within_lifetime(caller.expires_at(), expires_at)?;
    let secret = secrets::new_secret(secrets::API_TOKEN_PREFIX);
    let token = ApiTokenRow {
        id: TokenId::generate(),
        project_id: project.id,
        name: request.name.as_str().to_owned(),
        role: request.role,
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    let created = CreatedToken {
        id: token.id,
        name: token.name.clone(),
        role: token.role,
        token: secret.plain,
        expires_at: token
            .expires_at
            .map(|at| Timestamp::from_secs(at).to_rfc3339()),
    };
    auth.store
        .write(move |conn| {
            let tx = conn.transaction()?;
            // A repeat gets the token it created, secret included: the remembered answer
            // is sealed under a key only the request's Idempotency-Key derives.
            if let Some(answer) = keyed::repeated(&tx, keyed.as_ref())? {
                return Ok(answer);
            }
            store::insert_api_token(&tx, &token, &secret.hash)?;
            keyed::remember(&tx, keyed.as_ref(), &created)?;
            tx.commit()?;
            Ok::<_, Error>(created)
        })
        .await
}

/// A token made by a credential that expires must expire no later than it: otherwise a
/// short-lived CI token could mint one that lives for ever. Refused rather than clamped,
/// so the caller learns the lifetime it actually gets.
fn within_lifetime(creator_expires_at: Option<i64>, expires_at: Option<i64>) -> Result<(), Error> {
    let Some(limit) = creator_expires_at else {
        return Ok(());
    };
    match expires_at {
        Some(at) if at <= limit => Ok(()),
        _ => Err(Error::BadRequest(format!(
            "expires_at: a token created with an API token must expire no later than it does ({})",
            Timestamp::from_secs(limit).to_rfc3339()
        ))),
    }
}

pub async fn list(
    auth: &Auth,
    caller: Caller,
    request: ListTokens,
) -> Result<Page<TokenInfo>, Error> {
    let (project, role) = auth.project_for(&caller, request.project).await?;
    access::require(role, Role::Maintainer)?;
    let after = request
        .page
        .single_key_after()
        .map_err(|err| Error::BadRequest(err.to_string()))?;
    let limit = request.page.effective_limit();
    let rows = auth
        .store
        .read(move |conn| {
            Ok::<_, Error>(store::api_tokens_of_project(
                conn,
                project.id,
                &after,
                limit + 1,
            )?)
        })
        .await?;
    Ok(Page::from_overfetched(
        rows,
        limit,
        |t| encode_cursor(&[&t.id.to_string()]),
        token_out,
    ))
}

/// Revokes a token in the database and on every gateway at once.
pub async fn revoke(auth: &Auth, caller: Caller, request: RevokeToken) -> Result<(), Error> {
    let (project, role) = auth.project_for(&caller, request.project).await?;
    access::require(role, Role::Maintainer)?;
    let now = Timestamp::now().secs();
    let token_id = request.token_id;
    let revoked_at = auth
        .store
        .write(move |conn| {
            store::api_token_in_project(conn, project.id, token_id)?
                .ok_or(Error::NotFound("token"))?;
            store::revoke_api_token(conn, token_id, now)?.ok_or(Error::NotFound("token"))
        })
        .await?;
    auth.publish_revocation(
        RevocationTarget::ApiToken(request.token_id),
        revoked_at,
        RevocationWrite::IfAbsent,
    )
    .await
}

/// What a presented API token grants; for the gateway, which caches the answer briefly.
pub async fn verify(auth: &Auth, request: VerifyApiToken) -> Result<ApiTokenGrant, Error> {
    if !request.token.starts_with(secrets::API_TOKEN_PREFIX) {
        return Err(Error::Unauthorized("invalid API token"));
    }
    let hash = secrets::hash(&request.token);
    let now = Timestamp::now().secs();
    auth.store
        .write(move |conn| {
            let token = store::api_token_by_hash(conn, &hash)?
                .filter(|token| {
                    token.revoked_at.is_none() && token.expires_at.is_none_or(|at| at > now)
                })
                .ok_or(Error::Unauthorized("invalid API token"))?;
            store::touch_api_token(conn, token.id, now)?;
            Ok(ApiTokenGrant {
                token_id: token.id,
                project_id: token.project_id,
                role: token.role,
                expires_at: token.expires_at,
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_that_never_expires_may_create_anything() {
        assert!(within_lifetime(None, None).is_ok());
        assert!(within_lifetime(None, Some(100)).is_ok());
    }

    #[test]
    fn an_expiring_credential_creates_tokens_that_expire_no_later() {
        assert!(within_lifetime(Some(100), Some(100)).is_ok());
        assert!(within_lifetime(Some(100), Some(50)).is_ok());
        for refused in [None, Some(101)] {
            let error = within_lifetime(Some(100), refused).unwrap_err();
            assert!(error.to_string().starts_with("expires_at: "), "{error}");
        }
    }
}
