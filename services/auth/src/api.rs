//! The auth service's bus endpoints: decode, establish the caller, call the domain,
//! encode. Errors become service errors in `error.rs`.

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
use verdict_bus::{BusError, ServiceHost};
use verdict_contracts::auth::{self, Authorize, Principal, ProjectRef};
use verdict_contracts::idempotency::Keyed;
use verdict_contracts::system::Empty;
use verdict_contracts::Operation;
use verdict_store::idempotency::{keyed, KeyedRequest};

use crate::access::Caller;
use crate::context::Auth;
use crate::{api_tokens, projects, sessions, signing, users, Error};

type Answer<Resp> = Pin<Box<dyn Future<Output = Result<Resp, Error>> + Send>>;

pub async fn register(host: &mut ServiceHost, auth: Auth) -> Result<(), BusError> {
    let mut endpoints = host.with_state(auth);
    endpoints
        .for_service(auth::LOGIN, |auth, body| async move {
            sessions::login(&auth, body).await
        })
        .await?;
    endpoints
        .for_service(auth::REFRESH, |auth, body| async move {
            sessions::refresh(&auth, body).await
        })
        .await?;
    endpoints
        .for_service(auth::LOGOUT, |auth, body| async move {
            sessions::logout(&auth, body).await.map(|()| Empty {})
        })
        .await?;
    endpoints
        .for_service(auth::VERIFY_API_TOKEN, |auth, body| async move {
            api_tokens::verify(&auth, body).await
        })
        .await?;
    endpoints
        .for_service(auth::JWKS, |auth, _| async move {
            Ok::<_, Error>(signing::jwks(&auth))
        })
        .await?;

    endpoints
        .for_principal(
            auth::ME,
            as_caller(|auth, caller, _| async move { users::me(&auth, caller).await }),
        )
        .await?;
    endpoints
        .for_principal(
            auth::CREATE_USER,
            as_keyed_caller(auth::CREATE_USER, |auth, caller, body, keyed| async move {
                users::create_user(&auth, caller, body, keyed).await
            }),
        )
        .await?;
    endpoints
        .for_principal(
            auth::UPDATE_USER,
            as_caller(
                |auth, caller, body| async move { users::update_user(&auth, caller, body).await },
            ),
        )
        .await?;
    endpoints
        .for_principal(
            auth::CREATE_PROJECT,
            as_keyed_caller(
                auth::CREATE_PROJECT,
                |auth, caller, body, keyed| async move {
                    projects::create(&auth, caller, body, keyed).await
                },
            ),
        )
        .await?;
    endpoints
        .for_principal(
            auth::LIST_PROJECTS,
            as_caller(
                |auth, caller, body| async move { projects::list(&auth, caller, body).await },
            ),
        )
        .await?;
    endpoints
        .for_principal(
            auth::GET_PROJECT,
            as_caller(|auth, caller, body| async move { projects::get(&auth, caller, body).await }),
        )
        .await?;
    endpoints
        .for_service(auth::AUTHORIZE, |auth, body: Authorize| async move {
            let Authorize { principal, project } = body;
            let caller = auth.caller(principal).await?;
            projects::authorize(&auth, caller, ProjectRef { project }).await
        })
        .await?;
    endpoints
        .for_principal(
            auth::PUT_MEMBER,
            as_caller(|auth, caller, body| async move {
                projects::put_member(&auth, caller, body).await
            }),
        )
        .await?;
    endpoints
        .for_principal(
            auth::ADD_MEMBER,
            as_caller(|auth, caller, body| async move {
                projects::add_member(&auth, caller, body).await
            }),
        )
        .await?;
    endpoints
        .for_principal(
            auth::LIST_MEMBERS,
            as_caller(|auth, caller, body| async move {
                projects::list_members(&auth, caller, body).await
            }),
        )
        .await?;
    endpoints
        .for_principal(
            auth::LIST_USERS,
            as_caller(
                |auth, caller, body| async move { users::list_users(&auth, caller, body).await },
            ),
        )
        .await?;
    endpoints
        .for_principal(
            auth::DELETE_MEMBER,
            as_caller(|auth, caller, body| async move {
                projects::delete_member(&auth, caller, body)
                    .await
                    .map(|()| Empty {})
            }),
        )
        .await?;
    endpoints
        .for_principal(
            auth::CREATE_TOKEN,
            as_keyed_caller(auth::CREATE_TOKEN, |auth, caller, body, keyed| async move {
                api_tokens::create(&auth, caller, body, keyed).await
            }),
        )
        .await?;
    endpoints
        .for_principal(
            auth::LIST_TOKENS,
            as_caller(
                |auth, caller, body| async move { api_tokens::list(&auth, caller, body).await },
            ),
        )
        .await?;
    endpoints
        .for_principal(
            auth::REVOKE_TOKEN,
            as_caller(|auth, caller, body| async move {
                api_tokens::revoke(&auth, caller, body)
                    .await
                    .map(|()| Empty {})
            }),
        )
        .await?;
    endpoints
        .for_principal(
            auth::ROTATE_KEYS,
            as_caller(
                |auth, caller, _| async move { signing::rotate_on_request(&auth, caller).await },
            ),
        )
        .await
}

/// As [`as_caller`], for a creating request: the handler also gets what its
/// `Idempotency-Key` stands for, if it carries one.
fn as_keyed_caller<Req, Resp, F, Fut>(
    operation: Operation<Keyed<Req>, Resp>,
    handler: F,
) -> impl Fn(Auth, Principal, Keyed<Req>) -> Answer<Resp> + Send + Sync + 'static
where
    Req: Serialize + Send + 'static,
    Resp: 'static,
    F: Fn(Auth, Caller, Req, Option<KeyedRequest>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, Error>> + Send + 'static,
{
    move |auth, principal, request| {
        let handler = handler.clone();
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
    handler: F,
) -> impl Fn(Auth, Principal, Req) -> Answer<Resp> + Send + Sync + 'static
where
    Req: Send + 'static,
    Resp: 'static,
    F: Fn(Auth, Caller, Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, Error>> + Send + 'static,
{
    move |auth, principal, body| {
        let handler = handler.clone();
        Box::pin(async move {
            let caller = auth.caller(principal).await?;
            handler(auth, caller, body).await
        })
    }
}
