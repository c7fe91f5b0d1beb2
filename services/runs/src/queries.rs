//! Reading runs, results and test history. Every list is a keyset scan of
//! an index (checked by the store's query plan tests).

use std::collections::BTreeMap;

use verdict_contracts::auth::{Principal, Role};
use verdict_contracts::page::{decode_cursor, encode_cursor, Page, MAX_LIMIT};
use verdict_contracts::runs::{
    limits, HistoryEntry, ListResults, ListRuns, ResultStatus, Run, RunRef, RunScope, RunStatus,
    RunWithFailures, RunningRuns, SnapshotRun, TestHistory, TestKey, TestResult,
};

use crate::context::Runs;
use crate::convert::{history_out, parse_rfc3339, result_out, run_out};
use crate::domain::SearchText;
use crate::store::{self, ResultFilter, RunFilter};
use crate::Error;

pub async fn get_run(runs: Runs, principal: Principal, request: RunRef) -> Result<Run, Error> {
    Ok(run_out(
        runs.run_for(&principal, request.run_id, Role::Viewer)
            .await?,
    ))
}

/// A run and its latest failures, newest first: realtime's snapshot of a run channel
/// (realtime checked the viewer's role itself).
pub async fn run_snapshot(runs: &Runs, request: SnapshotRun) -> Result<RunWithFailures, Error> {
    let limit = request.failures.min(MAX_LIMIT);
    let run_id = request.run_id;
    let (run, failed) = runs
        .store
        .read(move |conn| {
            let run = store::run(conn, run_id)?.ok_or(Error::NotFound("run"))?;
            let failed = ResultFilter {
                status: Some(ResultStatus::Failed),
                suite: None,
                text: None,
                after: 0,
                newest_first: true,
            };
            let rows = store::list_results(conn, run.rid, &failed, limit)?;
            Ok::<_, Error>((run, rows))
        })
        .await?;
    let failures = failed
        .into_iter()
        .map(|result| result_out(run.id, result))
        .collect();
    Ok(RunWithFailures {
        run: run_out(run),
        failures,
    })
}

/// A project's running runs, newest first: realtime's snapshot of a project channel.
pub async fn running_runs(runs: &Runs, request: RunningRuns) -> Result<Vec<Run>, Error> {
    let limit = request.limit.min(MAX_LIMIT);
    let filter = RunFilter {
        status: Some(RunStatus::Running),
        attributes: BTreeMap::new(),
        since: None,
        until: None,
        after: None,
    };
    let rows = runs
        .store
        .read(move |conn| {
            Ok::<_, Error>(store::list_runs(conn, request.project_id, &filter, limit)?)
        })
        .await?;
    Ok(rows.into_iter().map(run_out).collect())
}

pub async fn run_scope(runs: &Runs, request: RunRef) -> Result<RunScope, Error> {
    let run_id = request.run_id;
    let run = runs
        .store
        .read(move |conn| Ok::<_, Error>(store::run(conn, run_id)?))
        .await?
        .ok_or(Error::NotFound("run"))?;
    Ok(RunScope {
        run_id: run.id,
        project_id: run.project_id,
        status: run.status,
    })
}

/// The parts of a page cursor this service made, or a 400 naming `cursor`.
pub(crate) fn cursor(cursor: &Option<String>, parts: usize) -> Result<Option<Vec<String>>, Error> {
    cursor
        .as_deref()
        .map(|cursor| {
            decode_cursor(cursor, parts).map_err(|err| Error::BadRequest(format!("cursor: {err}")))
        })
        .transpose()
}

/// `(started_at, id)` from a two-part cursor.
fn time_and_id(parts: Option<Vec<String>>) -> Result<Option<(i64, String)>, Error> {
    parts
        .map(|mut parts| {
            let id = parts.pop().unwrap_or_default();
            let at = parts
                .pop()
                .and_then(|at| at.parse().ok())
                .ok_or_else(not_ours)?;
            Ok((at, id))
        })
        .transpose()
}

/// `(started_at, rid)` from a two-part cursor.
fn time_and_rid(parts: Option<Vec<String>>) -> Result<Option<(i64, i64)>, Error> {
    time_and_id(parts)?
        .map(|(at, rid)| Ok((at, rid.parse().map_err(|_| not_ours())?)))
        .transpose()
}

/// A cursor that decodes but holds no position of the list it was sent to.
pub(crate) fn not_ours() -> Error {
    Error::BadRequest("cursor: is not one this list returned".into())
}

pub async fn list_runs(
    runs: Runs,
    principal: Principal,
    request: ListRuns,
) -> Result<Page<Run>, Error> {
    let access = runs
        .authorize(&principal, &request.project, Role::Viewer)
        .await?;
    check_attribute_filters(&request.attributes)?;
    let filter = RunFilter {
        status: request.status,
        attributes: request.attributes,
        since: request
            .since
            .as_deref()
            .map(|t| parse_rfc3339("since", t))
            .transpose()?,
        until: request
            .until
            .as_deref()
            .map(|t| parse_rfc3339("until", t))
            .transpose()?,
        after: time_and_id(cursor(&request.page.cursor, 2)?)?,
    };
    let limit = request.page.effective_limit();
    let rows = runs
        .store
        .read(move |conn| {
            Ok::<_, Error>(store::list_runs(
                conn,
                access.project_id,
                &filter,
                limit + 1,
            )?)
        })
        .await?;
    Ok(Page::from_overfetched(
        rows,
        limit,
        |run| encode_cursor(&[&run.started_at.to_string(), &run.id.to_string()]),
        run_out,
    ))
}

/// `attr.<key>=<value>` filters: few enough for one query, and no longer than a stored
/// attribute may be (a longer one could match nothing anyway).
pub(crate) fn check_attribute_filters(filters: &BTreeMap<String, String>) -> Result<(), Error> {
    if filters.len() > limits::MAX_ATTRIBUTE_FILTERS {
        return Err(Error::BadRequest(format!(
            "attr: at most {} attribute filters may be given, got {}",
            limits::MAX_ATTRIBUTE_FILTERS,
            filters.len()
        )));
    }
    for (key, value) in filters {
        if key.len() > limits::MAX_ATTRIBUTE_KEY_BYTES {
            return Err(Error::BadRequest(format!(
                "attr.<key>: keys must be at most {} bytes, got one of {}",
                limits::MAX_ATTRIBUTE_KEY_BYTES,
                key.len()
            )));
        }
        if value.len() > limits::MAX_ATTRIBUTE_VALUE_BYTES {
            return Err(Error::BadRequest(format!(
                "attr.{key}: must be at most {} bytes, got {}",
                limits::MAX_ATTRIBUTE_VALUE_BYTES,
                value.len()
            )));
        }
    }
    Ok(())
}

/// A client's words as an FTS5 query: each word a quoted phrase (`"` doubled, so no
/// operator syntax gets through), all of them required, the last one as a prefix.
fn text_query(q: &str) -> Result<Option<String>, Error> {
    Ok(SearchText::parse(q)?.map(|search| {
        let phrases: Vec<String> = search
            .words()
            .map(|word| format!("\"{}\"", word.replace('"', "\"\"")))
            .collect();
        format!("{}*", phrases.join(" "))
    }))
}

pub async fn list_results(
    runs: Runs,
    principal: Principal,
    request: ListResults,
) -> Result<Page<TestResult>, Error> {
    let run = runs
        .run_for(&principal, request.run_id, Role::Viewer)
        .await?;
    let after = match cursor(&request.page.cursor, 1)? {
        Some(parts) => parts[0].parse().map_err(|_| not_ours())?,
        None => 0,
    };
    if request
        .suite
        .as_ref()
        .is_some_and(|suite| suite.len() > limits::MAX_SUITE_BYTES)
    {
        return Err(Error::BadRequest(format!(
            "suite: must be at most {} bytes",
            limits::MAX_SUITE_BYTES
        )));
    }
    let filter = ResultFilter {
        status: request.status,
        suite: request.suite,
        text: request.q.as_deref().map(text_query).transpose()?.flatten(),
        after,
        newest_first: request.newest_first,
    };
    let limit = request.page.effective_limit();
    let rid = run.rid;
    let rows = runs
        .store
        .read(move |conn| Ok::<_, Error>(store::list_results(conn, rid, &filter, limit + 1)?))
        .await?;
    Ok(Page::from_overfetched(
        rows,
        limit,
        |result| encode_cursor(&[&result.seq.to_string()]),
        |result| result_out(run.id, result),
    ))
}

pub async fn test_history(
    runs: Runs,
    principal: Principal,
    request: TestHistory,
) -> Result<Page<HistoryEntry>, Error> {
    let key: TestKey = request
        .test_key
        .parse()
        .map_err(|err| Error::BadRequest(format!("test_key: {err}")))?;
    let access = runs
        .authorize(&principal, &request.project, Role::Viewer)
        .await?;
    let after = time_and_rid(cursor(&request.page.cursor, 2)?)?;
    let limit = request.page.effective_limit();
    let rows = runs
        .store
        .read(move |conn| {
            Ok::<_, Error>(store::test_history(
                conn,
                access.project_id,
                &key.to_string(),
                after,
                limit + 1,
            )?)
        })
        .await?;
    Ok(Page::from_overfetched(
        rows,
        limit,
        |row| encode_cursor(&[&row.started_at.to_string(), &row.rid.to_string()]),
        history_out,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MAX_SEARCH_BYTES, MAX_SEARCH_WORDS};

    #[test]
    fn search_words_are_quoted_so_no_fts_syntax_gets_through() {
        assert_eq!(
            text_query("time out").unwrap().unwrap(),
            "\"time\" \"out\"*"
        );
        assert_eq!(
            text_query("a\"b OR c").unwrap().unwrap(),
            "\"a\"\"b\" \"OR\" \"c\"*"
        );
        assert_eq!(text_query("   ").unwrap(), None);
    }

    #[test]
    fn whitespace_of_any_kind_separates_words() {
        assert_eq!(
            text_query("time\tout\nnow").unwrap().unwrap(),
            "\"time\" \"out\" \"now\"*"
        );
    }

    #[test]
    fn a_nul_inside_a_phrase_breaks_the_index_which_is_why_it_is_refused() {
        assert!(search("\"a\0b\"*".to_owned()).is_err());
    }

    fn filters(count: usize, key: &str, value: &str) -> BTreeMap<String, String> {
        (0..count)
            .map(|i| (format!("{key}{i}"), value.to_owned()))
            .collect()
    }

    #[test]
    fn attribute_filters_up_to_the_limit_are_accepted() {
        let at_limit = filters(limits::MAX_ATTRIBUTE_FILTERS, "k", "v");
        assert!(check_attribute_filters(&at_limit).is_ok());
    }

    #[test]
    fn more_attribute_filters_than_the_limit_are_refused_naming_it() {
        let err = check_attribute_filters(&filters(1000, "k", "v")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "attr: at most 16 attribute filters may be given, got 1000"
        );
    }

    #[test]
    fn an_attribute_filter_longer_than_an_attribute_is_refused_naming_the_limit() {
        let long_key = filters(1, &"k".repeat(limits::MAX_ATTRIBUTE_KEY_BYTES), "v");
        let err = check_attribute_filters(&long_key).unwrap_err().to_string();
        assert!(
            err.starts_with("attr.<key>: keys must be at most 128 bytes"),
            "{err}"
        );
        let long_value = filters(1, "k", &"v".repeat(limits::MAX_ATTRIBUTE_VALUE_BYTES + 1));
        let err = check_attribute_filters(&long_value)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "attr.k0: must be at most 1024 bytes, got 1025");
    }

    /// Searches `query` in the real schema's text index, as `list_results` does.
    fn search(query: String) -> verdict_store::rusqlite::Result<Vec<store::StoredResult>> {
        let conn = store::tests::conn();
        let filter = ResultFilter {
            text: Some(query),
            ..ResultFilter::default()
        };
        store::list_results(&conn, 1, &filter, 10)
    }

    proptest::proptest! {
        #[test]
        fn no_search_text_makes_the_index_fail(
            q in proptest::prop_oneof![
                proptest::prelude::any::<String>(),
                // FTS5's own syntax, and the bytes a C string parser trips over.
                "(\\PC|\\s|[\\x00-\\x1f\\x7f\"*^():{}+.-]|AND|OR|NOT|NEAR){0,24}",
            ]
        ) {
            if let Ok(Some(query)) = text_query(&q) {
                proptest::prop_assert!(search(query.clone()).is_ok(), "{query:?}");
            }
        }

        #[test]
        fn printable_search_text_within_the_limits_is_accepted_and_searched(
            q in "[^\\p{Cc}]{0,64}"
        ) {
            proptest::prop_assume!(
                q.len() <= MAX_SEARCH_BYTES && q.split_whitespace().count() <= MAX_SEARCH_WORDS
            );
            if let Some(query) = text_query(&q).unwrap() {
                proptest::prop_assert!(search(query.clone()).is_ok(), "{query:?}");
            }
        }
    }
}
