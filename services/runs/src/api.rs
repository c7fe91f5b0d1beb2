//! The runs service's bus endpoints: decode, check scope, call the domain, encode.

use std::future::Future;

use verdict_bus::{BusError, Call, ServiceHost};
use verdict_contracts::auth::Principal;
use verdict_contracts::runs;
use verdict_contracts::runs::triage as triage_ops;
use verdict_contracts::ServiceError;

use crate::context::Runs;
use crate::{imports, queries, run_commands, triage, Error};

pub async fn register(
    host: &mut ServiceHost,
    runs: Runs,
    wakeup: imports::Wakeup,
) -> Result<(), BusError> {
    host.endpoint_as(runs::CREATE_RUN, with(&runs, run_commands::create))
        .await?;
    host.endpoint_as(runs::GET_RUN, with(&runs, queries::get_run))
        .await?;
    host.endpoint_as(runs::LIST_RUNS, with(&runs, queries::list_runs))
        .await?;
    host.endpoint_as(runs::LIST_RESULTS, with(&runs, queries::list_results))
        .await?;
    host.endpoint_as(runs::TEST_HISTORY, with(&runs, queries::test_history))
        .await?;
    host.endpoint_as(runs::FLAKY_TESTS, with(&runs, triage::flaky_tests))
        .await?;
    host.endpoint_as(
        triage_ops::LIST_FAILURES,
        with(&runs, triage::list_failures),
    )
    .await?;
    host.endpoint_as(triage_ops::RUN_FAILURES, with(&runs, triage::run_failures))
        .await?;
    host.endpoint_as(
        triage_ops::SIGNATURE_RESULTS,
        with(&runs, triage::signature_results),
    )
    .await?;
    host.endpoint_as(
        triage_ops::SET_QUARANTINE,
        with(&runs, triage::set_quarantine),
    )
    .await?;
    host.endpoint_as(
        triage_ops::RELEASE_QUARANTINE,
        with(&runs, triage::release_quarantine),
    )
    .await?;
    host.endpoint_as(
        triage_ops::GET_QUARANTINE,
        with(&runs, triage::get_quarantine),
    )
    .await?;
    host.endpoint_as(triage_ops::LIST_TESTS, with(&runs, triage::list_tests))
        .await?;
    host.endpoint_as(
        triage_ops::SLOWEST_TESTS,
        with(&runs, triage::slowest_tests),
    )
    .await?;
    host.endpoint_as(triage_ops::TEST_TREND, with(&runs, triage::test_trend))
        .await?;
    host.endpoint_as(
        triage_ops::PROJECT_TREND,
        with(&runs, triage::project_trend),
    )
    .await?;
    host.endpoint_as(runs::DELETE_RUN, with(&runs, run_commands::delete))
        .await?;
    host.endpoint_as(runs::GET_SHARD, with(&runs, run_commands::get_shard))
        .await?;
    host.endpoint_as(runs::IMPORT_INTO_RUN, with(&runs, imports::into_run))
        .await?;
    host.endpoint_as(runs::CREATE_IMPORT, with(&runs, imports::create))
        .await?;
    host.endpoint_as(runs::GET_IMPORT, with(&runs, imports::get))
        .await?;
    let queue = runs.clone();
    host.endpoint_as(runs::START_IMPORT, move |principal, body| {
        imports::start(queue.clone(), principal, body, wakeup.clone())
    })
    .await?;
    let scope = runs.clone();
    host.endpoint(runs::RUN_SCOPE, move |call: Call<runs::RunRef>| {
        let runs = scope.clone();
        async move {
            queries::run_scope(&runs, call.body)
                .await
                .map_err(ServiceError::from)
        }
    })
    .await?;
    let snapshots = runs.clone();
    host.endpoint(runs::RUN_SNAPSHOT, move |call: Call<runs::SnapshotRun>| {
        let runs = snapshots.clone();
        async move {
            queries::run_snapshot(&runs, call.body)
                .await
                .map_err(ServiceError::from)
        }
    })
    .await?;
    host.endpoint(runs::RUNNING_RUNS, move |call: Call<runs::RunningRuns>| {
        let runs = runs.clone();
        async move {
            queries::running_runs(&runs, call.body)
                .await
                .map_err(ServiceError::from)
        }
    })
    .await
}

/// Binds a domain function to the service's state.
fn with<Req: 'static, Resp, Fut>(
    runs: &Runs,
    operation: fn(Runs, Principal, Req) -> Fut,
) -> impl Fn(Principal, Req) -> Fut + Send + Sync + 'static
where
    Fut: Future<Output = Result<Resp, Error>> + 'static,
{
    let runs = runs.clone();
    move |principal, body| operation(runs.clone(), principal, body)
}
