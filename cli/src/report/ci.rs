//! Where a report comes from, read from the environment of the CI system running the
//! command: GitHub Actions, GitLab CI, Buildkite, CircleCI, Jenkins or Azure Pipelines.
//! The run gets these as attributes (explicit `--attr` values win):
//!
//! | attribute | meaning |
//! | --- | --- |
//! | `ci.provider` | `github-actions`, `gitlab`, `buildkite`, `circleci`, `jenkins` or `azure-pipelines` |
//! | `ci.build_id` | the build (pipeline, workflow) every job of it shares |
//! | `ci.build_url` | the build's page |
//! | `git.branch` | the branch built (a pull request's source branch) |
//! | `git.commit` | the commit built |
//! | `git.pr` | the pull (merge) request number, when the build is for one |
//! | `git.repository` | GitHub Actions: `owner/name`; GitLab CI: the project's path |
//! | `git.provider` | `github` or `gitlab`, with `git.repository`: where the notify service sends the run's commit status |

use std::collections::BTreeMap;

pub const PROVIDER: &str = "ci.provider";
pub const BUILD_ID: &str = "ci.build_id";
pub const BUILD_URL: &str = "ci.build_url";
pub const BRANCH: &str = "git.branch";
pub const COMMIT: &str = "git.commit";
pub const PR: &str = "git.pr";
pub const REPOSITORY: &str = "git.repository";
pub const FORGE: &str = "git.provider";

/// The attributes the environment `env` tells of; empty outside a known CI system.
/// Empty variables count as unset.
pub fn attributes(env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let var = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut found = Found::default();
    if var("GITHUB_ACTIONS") == Some("true") {
        found.provider = Some("github-actions");
        let run_id = var("GITHUB_RUN_ID");
        // A re-run of a workflow keeps its run id; its attempt tells it apart.
        found.build_id = match (run_id, var("GITHUB_RUN_ATTEMPT")) {
            (Some(id), Some(attempt)) => Some(format!("{id}-{attempt}")),
            (id, _) => id.map(str::to_owned),
        };
        if let (Some(server), Some(repository), Some(id)) =
            (var("GITHUB_SERVER_URL"), var("GITHUB_REPOSITORY"), run_id)
        {
            found.build_url = Some(format!("{server}/{repository}/actions/runs/{id}"));
        }
        found.commit = var("GITHUB_SHA");
        found.repository = var("GITHUB_REPOSITORY").map(|repository| ("github", repository));
        found.branch = var("GITHUB_HEAD_REF").or_else(|| {
            var("GITHUB_REF")
                .and_then(|r| r.strip_prefix("refs/heads/"))
                .or_else(|| {
                    var("GITHUB_REF_NAME").filter(|_| var("GITHUB_REF_TYPE") == Some("branch"))
                })
        });
        found.pr = var("GITHUB_REF")
            .and_then(|r| r.strip_prefix("refs/pull/"))
            .and_then(|r| r.split('/').next())
            .map(str::to_owned);
    } else if var("GITLAB_CI") == Some("true") {
        found.provider = Some("gitlab");
        found.build_id = var("CI_PIPELINE_ID").map(str::to_owned);
        found.build_url = var("CI_PIPELINE_URL").map(str::to_owned);
        found.commit = var("CI_COMMIT_SHA");
        found.repository = var("CI_PROJECT_PATH").map(|repository| ("gitlab", repository));
        found.branch = var("CI_COMMIT_BRANCH").or(var("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME"));
        found.pr = var("CI_MERGE_REQUEST_IID").map(str::to_owned);
    } else if var("BUILDKITE") == Some("true") {
        found.provider = Some("buildkite");
        found.build_id = var("BUILDKITE_BUILD_ID").map(str::to_owned);
        found.build_url = var("BUILDKITE_BUILD_URL").map(str::to_owned);
        found.commit = var("BUILDKITE_COMMIT");
        found.branch = var("BUILDKITE_BRANCH");
        found.pr = var("BUILDKITE_PULL_REQUEST")
            .filter(|pr| *pr != "false")
            .map(str::to_owned);
    } else if var("CIRCLECI") == Some("true") {
        found.provider = Some("circleci");
        // The workflow is what the parallel jobs of one build share.
        found.build_id = var("CIRCLE_WORKFLOW_ID")
            .or(var("CIRCLE_BUILD_NUM"))
            .map(str::to_owned);
        found.build_url = var("CIRCLE_BUILD_URL").map(str::to_owned);
        found.commit = var("CIRCLE_SHA1");
        found.branch = var("CIRCLE_BRANCH");
        found.pr = var("CIRCLE_PR_NUMBER").map(str::to_owned).or_else(|| {
            var("CIRCLE_PULL_REQUEST")
                .and_then(|url| url.rsplit('/').next())
                .map(str::to_owned)
        });
    } else if var("TF_BUILD").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        found.provider = Some("azure-pipelines");
        let build_id = var("BUILD_BUILDID");
        found.build_id = build_id.map(str::to_owned);
        if let (Some(collection), Some(project), Some(id)) = (
            var("SYSTEM_TEAMFOUNDATIONCOLLECTIONURI"),
            var("SYSTEM_TEAMPROJECT"),
            build_id,
        ) {
            let collection = collection.trim_end_matches('/');
            found.build_url = Some(format!(
                "{collection}/{project}/_build/results?buildId={id}"
            ));
        }
        found.commit = var("BUILD_SOURCEVERSION");
        found.branch = var("SYSTEM_PULLREQUEST_SOURCEBRANCH")
            .or(var("BUILD_SOURCEBRANCH"))
            .map(|branch| branch.strip_prefix("refs/heads/").unwrap_or(branch));
        found.pr = var("SYSTEM_PULLREQUEST_PULLREQUESTNUMBER")
            .or(var("SYSTEM_PULLREQUEST_PULLREQUESTID"))
            .map(str::to_owned);
    } else if var("JENKINS_URL").is_some() {
        found.provider = Some("jenkins");
        found.build_id = var("BUILD_TAG").or(var("BUILD_NUMBER")).map(str::to_owned);
        found.build_url = var("BUILD_URL").map(str::to_owned);
        found.commit = var("GIT_COMMIT");
        found.branch = var("CHANGE_BRANCH").or(var("BRANCH_NAME")).or_else(|| {
            var("GIT_BRANCH").map(|branch| branch.strip_prefix("origin/").unwrap_or(branch))
        });
        found.pr = var("CHANGE_ID").map(str::to_owned);
    }
    found.into_attributes()
}

#[derive(Default)]
struct Found<'a> {
    provider: Option<&'static str>,
    build_id: Option<String>,
    build_url: Option<String>,
    branch: Option<&'a str>,
    commit: Option<&'a str>,
    pr: Option<String>,
    /// The forge hosting the repository, and the repository's name there.
    repository: Option<(&'static str, &'a str)>,
}

impl Found<'_> {
    fn into_attributes(self) -> BTreeMap<String, String> {
        [
            (PROVIDER, self.provider.map(str::to_owned)),
            (BUILD_ID, self.build_id),
            (BUILD_URL, self.build_url),
            (BRANCH, self.branch.map(str::to_owned)),
            (COMMIT, self.commit.map(str::to_owned)),
            (PR, self.pr),
            (REPOSITORY, self.repository.map(|(_, name)| name.to_owned())),
            (FORGE, self.repository.map(|(forge, _)| forge.to_owned())),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.map(|value| (key.to_owned(), value)))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        let env = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        attributes(&env)
    }

    fn expect(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn nothing_outside_a_ci_system() {
        assert!(detect(&[("HOME", "/root"), ("GITHUB_SHA", "abc")]).is_empty());
    }

    #[test]
    fn github_actions_push() {
        let found = detect(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_RUN_ID", "1658821493"),
            ("GITHUB_RUN_ATTEMPT", "2"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "octo/web"),
            ("GITHUB_SHA", "ffac537e6cbbf934b08745a378932722df287a53"),
            ("GITHUB_REF", "refs/heads/feature/login"),
            ("GITHUB_REF_NAME", "feature/login"),
            ("GITHUB_REF_TYPE", "branch"),
            ("GITHUB_HEAD_REF", ""),
        ]);
        assert_eq!(
            found,
            expect(&[
                (PROVIDER, "github-actions"),
                (BUILD_ID, "1658821493-2"),
                (
                    BUILD_URL,
                    "https://github.com/octo/web/actions/runs/1658821493"
                ),
                (BRANCH, "feature/login"),
                (COMMIT, "ffac537e6cbbf934b08745a378932722df287a53"),
                (REPOSITORY, "octo/web"),
                (FORGE, "github"),
            ])
        );
    }

    #[test]
    fn github_actions_pull_request() {
        let found = detect(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_RUN_ID", "7"),
            ("GITHUB_SHA", "abc"),
            ("GITHUB_REF", "refs/pull/42/merge"),
            ("GITHUB_REF_NAME", "42/merge"),
            ("GITHUB_HEAD_REF", "fix-typo"),
        ]);
        assert_eq!(found[BRANCH], "fix-typo");
        assert_eq!(found[PR], "42");
        assert_eq!(found[BUILD_ID], "7");
        assert!(!found.contains_key(BUILD_URL));
    }

    #[test]
    fn gitlab_merge_request_pipeline() {
        let found = detect(&[
            ("GITLAB_CI", "true"),
            ("CI_PIPELINE_ID", "1000"),
            ("CI_PIPELINE_URL", "https://gitlab.com/g/p/-/pipelines/1000"),
            ("CI_COMMIT_SHA", "1ecfd275763eff1d6b4844ea3168962458c9f27a"),
            ("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "feature"),
            ("CI_MERGE_REQUEST_IID", "12"),
        ]);
        assert_eq!(
            found,
            expect(&[
                (PROVIDER, "gitlab"),
                (BUILD_ID, "1000"),
                (BUILD_URL, "https://gitlab.com/g/p/-/pipelines/1000"),
                (BRANCH, "feature"),
                (COMMIT, "1ecfd275763eff1d6b4844ea3168962458c9f27a"),
                (PR, "12"),
            ])
        );
    }

    #[test]
    fn gitlab_names_the_project_path_as_the_repository() {
        let found = detect(&[
            ("GITLAB_CI", "true"),
            ("CI_PROJECT_PATH", "group/sub/web"),
            ("CI_COMMIT_SHA", "abc"),
        ]);
        assert_eq!(found[REPOSITORY], "group/sub/web");
        assert_eq!(found[FORGE], "gitlab");
    }

    #[test]
    fn gitlab_branch_pipeline() {
        let found = detect(&[
            ("GITLAB_CI", "true"),
            ("CI_COMMIT_BRANCH", "main"),
            ("CI_COMMIT_SHA", "abc"),
        ]);
        assert_eq!(found[BRANCH], "main");
        assert!(!found.contains_key(PR));
    }

    #[test]
    fn buildkite() {
        let found = detect(&[
            ("BUILDKITE", "true"),
            ("BUILDKITE_BUILD_ID", "f62a1b4d-10f9-4790-bc1c-e2c3a0c80983"),
            (
                "BUILDKITE_BUILD_URL",
                "https://buildkite.com/acme/web/builds/1514",
            ),
            (
                "BUILDKITE_COMMIT",
                "83a20ec058e2fb00e7fa4558c4c6e81e2dcf253d",
            ),
            ("BUILDKITE_BRANCH", "main"),
            ("BUILDKITE_PULL_REQUEST", "false"),
        ]);
        assert_eq!(
            found,
            expect(&[
                (PROVIDER, "buildkite"),
                (BUILD_ID, "f62a1b4d-10f9-4790-bc1c-e2c3a0c80983"),
                (BUILD_URL, "https://buildkite.com/acme/web/builds/1514"),
                (BRANCH, "main"),
                (COMMIT, "83a20ec058e2fb00e7fa4558c4c6e81e2dcf253d"),
            ])
        );
        let pr = detect(&[("BUILDKITE", "true"), ("BUILDKITE_PULL_REQUEST", "99")]);
        assert_eq!(pr[PR], "99");
    }

    #[test]
    fn circleci() {
        let found = detect(&[
            ("CIRCLECI", "true"),
            ("CIRCLE_WORKFLOW_ID", "d5d5a5e8-2c1b-4a2b-9b59-6c1b8f7d3e21"),
            ("CIRCLE_BUILD_NUM", "123"),
            ("CIRCLE_BUILD_URL", "https://circleci.com/gh/acme/web/123"),
            ("CIRCLE_SHA1", "abc123"),
            ("CIRCLE_BRANCH", "pull/7"),
            ("CIRCLE_PULL_REQUEST", "https://github.com/acme/web/pull/7"),
        ]);
        assert_eq!(
            found,
            expect(&[
                (PROVIDER, "circleci"),
                (BUILD_ID, "d5d5a5e8-2c1b-4a2b-9b59-6c1b8f7d3e21"),
                (BUILD_URL, "https://circleci.com/gh/acme/web/123"),
                (BRANCH, "pull/7"),
                (COMMIT, "abc123"),
                (PR, "7"),
            ])
        );
    }

    #[test]
    fn jenkins_multibranch_pull_request() {
        let found = detect(&[
            ("JENKINS_URL", "https://ci.example.com/"),
            ("BUILD_TAG", "jenkins-web-PR-5-3"),
            ("BUILD_NUMBER", "3"),
            ("BUILD_URL", "https://ci.example.com/job/web/job/PR-5/3/"),
            ("GIT_COMMIT", "fe1c8f0"),
            ("BRANCH_NAME", "PR-5"),
            ("CHANGE_BRANCH", "feature/x"),
            ("CHANGE_ID", "5"),
        ]);
        assert_eq!(
            found,
            expect(&[
                (PROVIDER, "jenkins"),
                (BUILD_ID, "jenkins-web-PR-5-3"),
                (BUILD_URL, "https://ci.example.com/job/web/job/PR-5/3/"),
                (BRANCH, "feature/x"),
                (COMMIT, "fe1c8f0"),
                (PR, "5"),
            ])
        );
    }

    #[test]
    fn jenkins_freestyle_job_with_the_git_plugin() {
        let found = detect(&[
            ("JENKINS_URL", "https://ci.example.com/"),
            ("BUILD_NUMBER", "41"),
            ("GIT_BRANCH", "origin/main"),
        ]);
        assert_eq!(found[BRANCH], "main");
        assert_eq!(found[BUILD_ID], "41");
    }

    #[test]
    fn azure_pipelines_pull_request() {
        let found = detect(&[
            ("TF_BUILD", "True"),
            ("BUILD_BUILDID", "880"),
            (
                "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI",
                "https://dev.azure.com/acme/",
            ),
            ("SYSTEM_TEAMPROJECT", "web"),
            ("BUILD_SOURCEVERSION", "6f2c1a"),
            ("BUILD_SOURCEBRANCH", "refs/pull/31/merge"),
            ("SYSTEM_PULLREQUEST_SOURCEBRANCH", "refs/heads/feature/y"),
            ("SYSTEM_PULLREQUEST_PULLREQUESTID", "31"),
        ]);
        assert_eq!(
            found,
            expect(&[
                (PROVIDER, "azure-pipelines"),
                (BUILD_ID, "880"),
                (
                    BUILD_URL,
                    "https://dev.azure.com/acme/web/_build/results?buildId=880"
                ),
                (BRANCH, "feature/y"),
                (COMMIT, "6f2c1a"),
                (PR, "31"),
            ])
        );
    }

    #[test]
    fn azure_pipelines_branch_build() {
        let found = detect(&[
            ("TF_BUILD", "True"),
            ("BUILD_SOURCEBRANCH", "refs/heads/release/2.0"),
        ]);
        assert_eq!(found[BRANCH], "release/2.0");
        assert!(!found.contains_key(PR));
    }
}
