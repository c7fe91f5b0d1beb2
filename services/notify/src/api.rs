//! The notify service's bus endpoints: decode, establish the caller, call the domain,
//! encode. Errors become service errors in `error.rs`.

use verdict_bus::{BusError, ServiceHost};
use verdict_contracts::notify;

use crate::domain::webhooks::Webhooks;

pub async fn register(host: &mut ServiceHost, webhooks: Webhooks) -> Result<(), BusError> {
    let mut endpoints = host.with_state(webhooks);
    endpoints
        .for_principal(notify::CREATE_WEBHOOK, |w, p, body| async move {
            w.create(&p, body).await
        })
        .await?;
    endpoints
        .for_principal(notify::LIST_WEBHOOKS, |w, p, body| async move {
            w.list(&p, body).await
        })
        .await?;
    endpoints
        .for_principal(notify::GET_WEBHOOK, |w, p, body| async move {
            w.get(&p, body).await
        })
        .await?;
    endpoints
        .for_principal(notify::UPDATE_WEBHOOK, |w, p, body| async move {
            w.update(&p, body).await
        })
        .await?;
    endpoints
        .for_principal(notify::DELETE_WEBHOOK, |w, p, body| async move {
            w.delete(&p, body).await
        })
        .await?;
    endpoints
        .for_principal(notify::LIST_DELIVERIES, |w, p, body| async move {
            w.deliveries(&p, body).await
        })
        .await?;
    endpoints
        .for_principal(notify::REDELIVER, |w, p, body| async move {
            w.redeliver(&p, body).await
        })
        .await
}
