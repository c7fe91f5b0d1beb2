//! The runs service's bus endpoints: decode, check scope, call the domain, encode.

use verdict_bus::{BusError, ServiceHost};
use verdict_contracts::runs;
use verdict_contracts::runs::triage as triage_ops;

use crate::context::Runs;
use crate::{imports, queries, run_commands, triage};

pub async fn register(
    host: &mut ServiceHost,
    runs: Runs,
    wakeup: imports::Wakeup,
) -> Result<(), BusError> {
    let mut endpoints = host.with_state(runs);
    endpoints
        .for_principal(runs::CREATE_RUN, run_commands::create)
        .await?;
    endpoints
        .for_principal(runs::GET_RUN, queries::get_run)
        .await?;
    endpoints
        .for_principal(runs::LIST_RUNS, queries::list_runs)
        .await?;
    endpoints
        .for_principal(runs::LIST_RESULTS, queries::list_results)
        .await?;
    endpoints
        .for_principal(runs::TEST_HISTORY, queries::test_history)
        .await?;
    endpoints
        .for_principal(runs::FLAKY_TESTS, triage::flaky_tests)
        .await?;
    endpoints
        .for_principal(triage_ops::LIST_FAILURES, triage::list_failures)
        .await?;
    endpoints
        .for_principal(triage_ops::RUN_FAILURES, triage::run_failures)
        .await?;
    endpoints
        .for_service(triage_ops::RUN_NEWS, triage::run_news)
        .await?;
    endpoints
        .for_principal(triage_ops::SIGNATURE_RESULTS, triage::signature_results)
        .await?;
    endpoints
        .for_principal(triage_ops::SET_QUARANTINE, triage::set_quarantine)
        .await?;
    endpoints
        .for_principal(triage_ops::RELEASE_QUARANTINE, triage::release_quarantine)
        .await?;
    endpoints
        .for_principal(triage_ops::GET_QUARANTINE, triage::get_quarantine)
        .await?;
    endpoints
        .for_principal(triage_ops::LIST_TESTS, triage::list_tests)
        .await?;
    endpoints
        .for_principal(triage_ops::SLOWEST_TESTS, triage::slowest_tests)
        .await?;
    endpoints
        .for_principal(triage_ops::TEST_TREND, triage::test_trend)
        .await?;
    endpoints
        .for_principal(triage_ops::PROJECT_TREND, triage::project_trend)
        .await?;
    endpoints
        .for_principal(runs::DELETE_RUN, run_commands::delete)
        .await?;
    endpoints
        .for_principal(runs::GET_SHARD, run_commands::get_shard)
        .await?;
    endpoints
        .for_principal(runs::IMPORT_INTO_RUN, imports::into_run)
        .await?;
    endpoints
        .for_principal(runs::CREATE_IMPORT, imports::create)
        .await?;
    endpoints
        .for_principal(runs::GET_IMPORT, imports::get)
        .await?;
    endpoints
        .for_principal(runs::START_IMPORT, move |runs, principal, body| {
            imports::start(runs, principal, body, wakeup.clone())
        })
        .await?;
    endpoints
        .for_service(runs::RUN_SCOPE, |runs, body| async move {
            queries::run_scope(&runs, body).await
        })
        .await?;
    endpoints
        .for_service(runs::RUN_SNAPSHOT, |runs, body| async move {
            queries::run_snapshot(&runs, body).await
        })
        .await?;
    endpoints
        .for_service(runs::RUNNING_RUNS, |runs, body| async move {
            queries::running_runs(&runs, body).await
        })
        .await
}
