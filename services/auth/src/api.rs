//! The auth service's bus endpoints: decode, establish the caller, call the domain,
//! encode. Errors become service errors in `error.rs`.

use std::future::Future;

use verdict_bus::{BusError, Call, ServiceHost};
use verdict_contracts::auth::{self, Principal};
use verdict_contracts::system::Empty;
use verdict_contracts::{Operation, ServiceError};

use crate::access::Caller;
use crate::context::Auth;
use crate::{api_tokens, projects, sessions, signing, users, Error};

pub async fn register(host: &mut ServiceHost, auth: Auth) -> Result<(), BusError> {
    public(host, &auth, auth::LOGIN, |auth, body| async move {
        sessions::login(&auth, body).await
    })
    .await?;
    public(host, &auth, auth::REFRESH, |auth, body| async move {
        sessions::refresh(&auth, body).await
    })
    .await?;
    public(host, &auth, auth::LOGOUT, |auth, body| async move {
        sessions::logout(&auth, body).await.map(|()| Empty {})
    })
    .await?;
    public(
        host,
        &auth,
        auth::VERIFY_API_TOKEN,
        |auth, body| async move { api_tokens::verify(&auth, body).await },
    )
    .await?;
    public(host, &auth, auth::JWKS, |auth, _| async move {
        Ok(signing::jwks(&auth))
    })
    .await?;

    authenticated(host, &auth, auth::ME, |auth, caller, _| async move {
        users::me(&auth, caller).await
    })
    .await?;
    authenticated(
        host,
        &auth,
        auth::CREATE_USER,
        |auth, caller, body| async move { users::create_user(&auth, caller, body).await },
    )
    .await?;
    authenticated(
        host,
        &auth,
        auth::UPDATE_USER,
        |auth, caller, body| async move { users::update_user(&auth, caller, body).await },
    )
    .await?;
    authenticated(
        host,
        &auth,
        auth::CREATE_PROJECT,
        |auth, caller, body| async move { projects::create(&auth, caller, body).await },
    )
    .await?;
    authenticated(
        host,
        &auth,
        auth::LIST_PROJECTS,
        |auth, caller, body| async move { projects::list(&auth, caller, body).await },
    )
    .await?;
    authenticated(
        host,
        &auth,
        auth::GET_PROJECT,
        |auth, caller, body| async move { projects::get(&auth, caller, body).await },
    )
    .await?;
    authenticated(
        host,
        &auth,
        auth::AUTHORIZE,
        |auth, caller, body| async move { projects::authorize(&auth, caller, body).await },
    )
    .await?;
    authenticated(
        host,
        &auth,
        auth::PUT_MEMBER,
        |auth, caller, body| async move { projects::put_member(&auth, caller, body).await },
    )
    .await?;
    authenticated(
        host,
        &auth,
        auth::DELETE_MEMBER,
        |auth, caller, body| async move {
            projects::delete_member(&auth, caller, body)
                .await
                .map(|()| Empty {})
        },
    )
    .await?;
    authenticated(
        host,
        &auth,
        auth::CREATE_TOKEN,
        |auth, caller, body| async move { api_tokens::create(&auth, caller, body).await },
    )
    .await?;
    authenticated(
        host,
        &auth,
        auth::LIST_TOKENS,
        |auth, caller, body| async move { api_tokens::list(&auth, caller, body).await },
    )
    .await?;
    authenticated(
        host,
        &auth,
        auth::REVOKE_TOKEN,
        |auth, caller, body| async move {
            api_tokens::revoke(&auth, caller, body)
                .await
                .map(|()| Empty {})
        },
    )
    .await?;
    authenticated(
        host,
        &auth,
        auth::ROTATE_KEYS,
        |auth, caller, _| async move { signing::rotate_on_request(&auth, caller).await },
    )
    .await
}

/// An endpoint that needs no principal (sign-in, the gateway's own lookups).
async fn public<Req, Resp, F, Fut>(
    host: &mut ServiceHost,
    auth: &Auth,
    operation: Operation<Req, Resp>,
    handler: F,
) -> Result<(), BusError>
where
    Req: serde::de::DeserializeOwned + Send + 'static,
    Resp: serde::Serialize + Send + 'static,
    F: Fn(Auth, Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, Error>> + Send + 'static,
{
    let auth = auth.clone();
    host.endpoint(operation, move |call: Call<Req>| {
        let answer = handler(auth.clone(), call.body);
        async move { answer.await.map_err(ServiceError::from) }
    })
    .await
}

/// An endpoint on behalf of the principal the gateway established.
async fn authenticated<Req, Resp, F, Fut>(
    host: &mut ServiceHost,
    auth: &Auth,
    operation: Operation<Req, Resp>,
    handler: F,
) -> Result<(), BusError>
where
    Req: serde::de::DeserializeOwned + Send + 'static,
    Resp: serde::Serialize + Send + 'static,
    F: Fn(Auth, Caller, Req) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, Error>> + Send + 'static,
{
    let auth = auth.clone();
    let handler = std::sync::Arc::new(handler);
    host.endpoint(operation, move |call: Call<Req>| {
        let (auth, handler) = (auth.clone(), handler.clone());
        async move {
            let principal: Principal = call.principal()?;
            let caller = auth.caller(principal).await?;
            handler(auth, caller, call.body)
                .await
                .map_err(ServiceError::from)
        }
    })
    .await
}
