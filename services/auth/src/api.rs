//! The auth service's bus endpoints: decode, establish the caller, call the domain,
//! encode. Errors become service errors in `error.rs`.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use verdict_bus::{BusError, Call, ServiceHost};
use verdict_contracts::auth::{self, Authorize, Principal, ProjectRef};
use verdict_contracts::idempotency::Keyed;
use verdict_contracts::system::Empty;
use verdict_contracts::{Operation, ServiceError};
use verdict_store::idempotency::{keyed, KeyedRequest};

use crate::access::Caller;
use crate::context::Auth;
use crate::{api_tokens, projects, sessions, signing, users, Error};

type Answer<Resp> = Pin<Box<dyn Future<Output = Result<Resp, Error>> + Send>>;

pub async fn register(host: &mut ServiceHost, auth: Auth) -> Result<(), BusError> {
    let a = &auth;
    public(host, a, auth::LOGIN, |auth, body| async move {
        sessions::login(&auth, body).await
    })
    .await?;
    public(host, a, auth::REFRESH, |auth, body| async move {
        sessions::refresh(&auth, body).await
    })
    .await?;
    public(host, a, auth::LOGOUT, |auth, body| async move {
        sessions::logout(&auth, body).await.map(|()| Empty {})
    })
    .await?;
    public(host, a, auth::VERIFY_API_TOKEN, |auth, body| async move {
        api_tokens::verify(&auth, body).await
    })
    .await?;
    public(host, a, auth::JWKS, |auth, _| async move {
        Ok(signing::jwks(&auth))
    })
    .await?;

    host.endpoint_as(
        auth::ME,
        as_caller(a, |auth, caller, _| async move {
            users::me(&auth, caller).await
        }),
    )
    .await?;
    host.endpoint_as(
        auth::CREATE_USER,
        as_keyed_caller(
            a,
            auth::CREATE_USER,
            |auth, caller, body, keyed| async move {
                users::create_user(&auth, caller, body, keyed).await
            },
        ),
    )
    .await?;
    host.endpoint_as(
        auth::UPDATE_USER,
        as_caller(a, |auth, caller, body| async move {
            users::update_user(&auth, caller, body).await
        }),
    )
    .await?;
    host.endpoint_as(
        auth::CREATE_PROJECT,
        as_keyed_caller(
            a,
            auth::CREATE_PROJECT,
            |auth, caller, body, keyed| async move {
                projects::create(&auth, caller, body, keyed).await
            },
        ),
    )
    .await?;
    host.endpoint_as(
        auth::LIST_PROJECTS,
        as_caller(a, |auth, caller, body| async move {
            projects::list(&auth, caller, body).await
        }),
    )
    .await?;
    host.endpoint_as(
        auth::GET_PROJECT,
        as_caller(a, |auth, caller, body| async move {
            projects::get(&auth, caller, body).await
        }),
    )
    .await?;
    {
        let auth = a.clone();
        host.endpoint(auth::AUTHORIZE, move |call| {
            let auth = auth.clone();
            async move {
                let Authorize { principal, project } = call.body;
                let caller = auth.caller(principal).await?;
                Ok(projects::authorize(&auth, caller, ProjectRef { project }).await?)
            }
        })
        .await?;
    }
    host.endpoint_as(
        auth::PUT_MEMBER,
        as_caller(a, |auth, caller, body| async move {
            projects::put_member(&auth, caller, body).await
        }),
    )
    .await?;
    host.endpoint_as(
        auth::ADD_MEMBER,
        as_caller(a, |auth, caller, body| async move {
            projects::add_member(&auth, caller, body).await
        }),
    )
    .await?;
    host.endpoint_as(
        auth::LIST_MEMBERS,
        as_caller(a, |auth, caller, body| async move {
            projects::list_members(&auth, caller, body).await
        }),
    )
    .await?;
    host.endpoint_as(
        auth::LIST_USERS,
        as_caller(a, |auth, caller, body| async move {
            users::list_users(&auth, caller, body).await
        }),
    )
    .await?;
    host.endpoint_as(
        auth::DELETE_MEMBER,
        as_caller(a, |auth, caller, body| async move {
            projects::delete_member(&auth, caller, body)
                .await
                .map(|()| Empty {})
        }),
    )
    .await?;
    host.endpoint_as(
        auth::CREATE_TOKEN,
        as_keyed_caller(
            a,
            auth::CREATE_TOKEN,
            |auth, caller, body, keyed| async move {
                api_tokens::create(&auth, caller, body, keyed).await
            },
        ),
    )
    .await?;
    host.endpoint_as(
        auth::LIST_TOKENS,
        as_caller(a, |auth, caller, body| async move {
            api_tokens::list(&auth, caller, body).await
        }),
    )
    .await?;
    host.endpoint_as(
        auth::REVOKE_TOKEN,
        as_caller(a, |auth, caller, body| async move {
            api_tokens::revoke(&auth, caller, body)
                .await
                .map(|()| Empty {})
        }),
    )
    .await?;
    host.endpoint_as(
        auth::ROTATE_KEYS,
        as_caller(a, |auth, caller, _| async move {
            signing::rotate_on_request(&auth, caller).await
        }),
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

/// As [`as_caller`], for a creating request: the handler also gets what its
/// `Idempotency-Key` stands for, if it carries one.
fn as_keyed_caller<Req, Resp, F, Fut>(
    auth: &Auth,
    operation: Operation<Keyed<Req>, Resp>,
    handler: F,
) -> impl Fn(Principal, Keyed<Req>) -> Answer<Resp> + Send + Sync + 'static
where
    Req: Serialize + Send + 'static,
    Resp: 'static,
    F: Fn(Auth, Caller, Req, Option<KeyedRequest>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, Error>> + Send + 'static,
{
    let auth = auth.clone();
    move |principal, request| {
        let (auth, handler) = (auth.clone(), handler.clone());
        let keyed = keyed(&principal, &operation, &request);
        Box::pin(async move {
            let caller = auth.caller(principal).await?;
            handler(auth, caller, request.request, keyed).await
        })
    }
}

/// Turns the gateway's principal into the caller as the auth service knows it (user
/// still enabled, session still live, token not revoked) before `handler` runs.
fn as_caller<Req, Resp, F, Fut>(
    auth: &Auth,
    handler: F,
) -> impl Fn(Principal, Req) -> Answer<Resp> + Send + Sync + 'static
where
    Req: Send + 'static,
    Resp: 'static,
    F: Fn(Auth, Caller, Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, Error>> + Send + 'static,
{
    let auth = auth.clone();
    move |principal, body| {
        let (auth, handler) = (auth.clone(), handler.clone());
        Box::pin(async move {
            let caller = auth.caller(principal).await?;
            handler(auth, caller, body).await
        })
    }
}
