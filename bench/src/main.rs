//! `verdict-bench`: benchmarks of a whole Verdict system, started in-process on a real
//! nats-server on this machine (services, bus and load generator share its cores).
//! Run in release: `cargo run --release -p verdict-bench -- <benchmark>`.

mod artifacts;
mod auth;
mod burst;
mod fixture;
mod import;
mod ingest;
mod live;
mod loopback;
mod notify;
mod pauses;
mod process;
mod report;
mod run_command;
mod runs;
mod stats;
mod triage;
mod up;
mod web;

use clap::{Parser, Subcommand};

/// The allocator the `verdict` binary uses, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "Verdict benchmarks; prints Markdown for BENCHMARKS.md")]
struct Cli {
    #[command(subcommand)]
    benchmark: Benchmark,
}

#[derive(Subcommand)]
enum Benchmark {
    /// Artifact upload and download throughput (local disk vs `cp`, S3 presigned vs the
    /// plain SDK) and the artifacts service's peak memory during a large upload. Needs
    /// `cargo build --release -p verdict-cli` (the service runs as its own process).
    Artifacts {
        /// Size of the throughput file, in MiB.
        #[arg(long, default_value_t = 256)]
        size_mib: u64,
        /// Size of the upload during which peak memory is read, in MiB.
        #[arg(long, default_value_t = 1024)]
        rss_mib: u64,
    },
    /// Webhook deliveries: run finished -> receiver latency, and deliveries per second
    /// with many webhooks (a receiver on loopback in this process).
    Notify {
        /// Runs finished one at a time, each timed to its delivery.
        #[arg(long, default_value_t = 200)]
        runs: usize,
        /// Webhooks of the throughput project.
        #[arg(long, default_value_t = 1000)]
        webhooks: usize,
        /// Runs finished together, each delivered to every webhook.
        #[arg(long, default_value_t = 5)]
        burst_runs: usize,
    },
    /// Login latency and the latency the gateway's JWT check adds to a request.
    Auth {
        /// Logins to time.
        #[arg(long, default_value_t = 200)]
        logins: usize,
        /// Requests to time on each path.
        #[arg(long, default_value_t = 5000)]
        requests: usize,
    },
    /// End-to-end ingest against raw SQLite, and query latency over many results.
    Runs {
        #[arg(long, default_value_t = 100)]
        runs: usize,
        #[arg(long, default_value_t = 10_000)]
        results_per_run: usize,
        #[arg(long, default_value_t = 500)]
        batch: usize,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        #[arg(long, default_value_t = 500)]
        queries: usize,
    },
    /// Triage queries (failure signatures, new failures, trends, slowest tests, catalog
    /// search, flaky list) over a generated history: p50/p99 through the gateway, and
    /// the ingest rate with signatures computed on apply.
    Triage {
        #[arg(long, default_value_t = 500)]
        runs: usize,
        #[arg(long, default_value_t = 20_000)]
        tests: usize,
        #[arg(long, default_value_t = 2_000)]
        results_per_run: usize,
        #[arg(long, default_value_t = 500)]
        batch: usize,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        #[arg(long, default_value_t = 300)]
        queries: usize,
    },
    /// Live fan-out: memory per viewer, frames per second per core and 202-to-viewer
    /// latency of a gateway, against nats-server's WebSocket listener serving the same
    /// frames and against the floor (a process that only writes the frames). Needs `cargo build --release -p verdict-cli` (the gateway runs as its own
    /// process).
    Live {
        #[arg(long, default_value_t = 10_000)]
        viewers: usize,
        /// Results posted per second.
        #[arg(long, default_value_t = 1000)]
        rate: usize,
        /// Results per batch: a reporter that sends what it has every 100 ms at
        /// 1 000 results/s sends batches of 100.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// One viewer in this many times its frames.
        #[arg(long, default_value_t = 10)]
        sample_every: usize,
        /// The gateway's viewers ask for `encoding=deflate` (compressed frames; only
        /// timed viewers inflate the large ones).
        #[arg(long)]
        deflate: bool,
        /// Further viewers of the gateway that subscribe, then never read again (with a
        /// 4 KiB receive buffer): what they cost the others.
        #[arg(long, default_value_t = 0)]
        stalled: usize,
    },
    /// `verdict run` over a test command printing a large suite (TAP or go test -json):
    /// the wall time it adds to the command alone, and print-to-queryable latency of
    /// each result, against a fresh `verdict up` (needs `cargo build --release -p
    /// verdict-cli`).
    RunCommand {
        #[arg(long, default_value_t = 10_000)]
        tests: usize,
        /// Tests printed per second (0: as fast as the pipe takes them).
        #[arg(long, default_value_t = 1000)]
        rate: usize,
        #[arg(long, value_enum, default_value = "tap")]
        format: run_command::StreamFormat,
        /// Runs of each (the command alone, under `verdict run`); medians are printed.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// The test command of `run-command`, which starts it as its own process.
    #[command(hide = true)]
    RunCommandStream {
        #[arg(long)]
        tests: usize,
        #[arg(long)]
        rate: usize,
        #[arg(long, value_enum)]
        format: run_command::StreamFormat,
        #[arg(long)]
        times: std::path::PathBuf,
    },
    /// The floor server of `live`, which starts it as its own process.
    #[command(hide = true)]
    LiveFloor {
        #[arg(long)]
        nats: String,
        #[arg(long)]
        subject: String,
        #[arg(long)]
        port: u16,
        #[arg(long)]
        deflate: bool,
    },
    /// The machine's floor for live fan-out, without Verdict: messages written to many
    /// loopback TCP sockets in rounds and read back by a bare epoll loop in another
    /// process; latency from a round's start to each read, CPU per message.
    Loopback {
        #[arg(long, default_value_t = 10_000)]
        sockets: usize,
        /// Bytes per message (a compressed `test.finished` frame of 100 results is
        /// about 2 000).
        #[arg(long, default_value_t = 2000)]
        bytes: usize,
        #[arg(long, default_value_t = 50)]
        rounds: usize,
        /// Rounds per second.
        #[arg(long, default_value_t = 10)]
        rate: u64,
    },
    /// The reading side of `loopback`, which starts it as its own process.
    #[command(hide = true)]
    LoopbackReader {
        #[arg(long)]
        address: String,
        #[arg(long)]
        sockets: usize,
        #[arg(long)]
        bytes: usize,
        #[arg(long)]
        rounds: usize,
    },
    /// End-to-end ingest side by side with the reference implementation of the same API
    /// (Express + better-sqlite3): runs of a repeating suite, then one run of new tests,
    /// each against a fresh `verdict up` (needs `cargo build --release -p verdict-cli`)
    /// and a fresh reference.
    Ingest {
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 500)]
        batch: usize,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        /// Tests in the repeating suite.
        #[arg(long, default_value_t = 20_000)]
        suite: usize,
        /// A copy of `shared/peers/node-reference` (after `npm ci`) to measure in the same
        /// run; without it only Verdict is measured.
        #[arg(long)]
        reference: Option<std::path::PathBuf>,
    },
    /// Ingest pauses: the same burst repeated, each on a fresh `verdict up` (needs
    /// `cargo build --release -p verdict-cli`), and for each the longest time in which no
    /// result became visible while accepted ones waited.
    Pauses {
        #[arg(long, default_value_t = 20)]
        repeat: usize,
        /// Systems bursting at once, each its own `verdict up` with its own burst: on a
        /// machine the applying thread of one system leaves partly idle, the rounds take
        /// less time in all, and each burst meets a busier machine.
        #[arg(long, default_value_t = 1)]
        parallel: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 500)]
        batch: usize,
        #[arg(long, default_value_t = 8)]
        connections: usize,
        /// Runs of a suite of this many tests whose names repeat (default: one run in
        /// which every result is a new test).
        #[arg(long)]
        suite: Option<usize>,
        /// Seconds after the last post within which every accepted result must be
        /// counted: a guard against a system that stopped for good, not a target (pauses
        /// are what the bench measures; a burst of millions of new tests takes minutes to
        /// apply on a busy two-core machine).
        #[arg(long, default_value_t = 3600)]
        drain_limit: u64,
    },
    /// The dashboard: server time to render a run page of 100 000 results among a
    /// million, script and style shipped, first contentful paint in headless Chromium,
    /// and 202-to-visible latency on several open pages of a run reported to live.
    Web {
        #[arg(long, default_value_t = 10)]
        runs: usize,
        #[arg(long, default_value_t = 100_000)]
        results_per_run: usize,
        #[arg(long, default_value_t = 200)]
        renders: usize,
        #[arg(long, default_value_t = 21)]
        paints: usize,
        #[arg(long, default_value_t = 20)]
        pages: usize,
        /// Results posted per second to the live run.
        #[arg(long, default_value_t = 1000)]
        rate: usize,
        #[arg(long, default_value_t = 100)]
        batch: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Open each live page in a headless Chromium of its own (by default the pages are
        /// windows of one headless Chromium).
        #[arg(long)]
        browser_per_page: bool,
    },
    /// Streaming parse of a large generated report of each format (JUnit, NUnit 2 and 3,
    /// xUnit.net, TRX), each in a process of its own: time and peak memory.
    Import {
        #[arg(long, default_value_t = 50)]
        megabytes: usize,
        /// Only this format, in this process.
        #[arg(long, value_enum)]
        format: Option<import::Format>,
        /// Print the table's row without its header.
        #[arg(long, hide = true)]
        row_only: bool,
    },
    /// `verdict report` (the release binary) against a fresh `verdict up` (needs `cargo
    /// build --release -p verdict-cli`): a generated JUnit report, and many small
    /// artifacts, each from the command's start until the API shows it all.
    Report {
        #[arg(long, default_value_t = 50)]
        megabytes: usize,
        #[arg(long, default_value_t = 1000)]
        artifacts: usize,
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Without rate limits (by default the system has the limits a CI job meets).
        #[arg(long)]
        unlimited_rates: bool,
    },
    /// Live reporting during a large import: 202-to-queryable latency of small batches
    /// posted to one run while a generated JUnit report is imported into another.
    ImportAvailability {
        /// Size of the report, in MB; the default is just under the default import
        /// limit, 256 MiB.
        #[arg(long, default_value_t = 266)]
        megabytes: usize,
        /// Results per live batch.
        #[arg(long, default_value_t = 10)]
        batch: usize,
        /// Pause between live batches, in milliseconds.
        #[arg(long, default_value_t = 50)]
        pause_ms: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    verdict_testkit::install_tls_provider();
    match Cli::parse().benchmark {
        Benchmark::Auth { logins, requests } => auth::run(logins, requests).await,
        Benchmark::Notify {
            runs,
            webhooks,
            burst_runs,
        } => {
            notify::run(notify::Plan {
                runs,
                webhooks,
                burst_runs,
            })
            .await
        }
        Benchmark::Import {
            megabytes,
            format,
            row_only,
        } => import::run(megabytes, format, row_only),
        Benchmark::ImportAvailability {
            megabytes,
            batch,
            pause_ms,
        } => {
            import::availability(import::Availability {
                megabytes,
                batch,
                pause: std::time::Duration::from_millis(pause_ms),
            })
            .await
        }
        Benchmark::Live {
            viewers,
            rate,
            batch,
            seconds,
            sample_every,
            deflate,
            stalled,
        } => {
            live::run(live::Plan {
                viewers,
                rate,
                batch,
                seconds,
                sample_every: sample_every.max(1),
                deflate,
                stalled,
            })
            .await
        }
        Benchmark::Loopback {
            sockets,
            bytes,
            rounds,
            rate,
        } => loopback::run(loopback::Plan {
            sockets,
            bytes,
            rounds,
            rate,
        }),
        Benchmark::LoopbackReader {
            address,
            sockets,
            bytes,
            rounds,
        } => loopback::read(&address, sockets, bytes, rounds),
        Benchmark::RunCommand {
            tests,
            rate,
            format,
            repeat,
        } => {
            run_command::run(run_command::Plan {
                tests,
                rate,
                format,
                repeat: repeat.max(1),
            })
            .await
        }
        Benchmark::RunCommandStream {
            tests,
            rate,
            format,
            times,
        } => run_command::stream(tests, rate, format, &times),
        Benchmark::LiveFloor {
            nats,
            subject,
            port,
            deflate,
        } => live::serve_floor(&nats, &subject, port, deflate).await,
        Benchmark::Runs {
            runs,
            results_per_run,
            batch,
            connections,
            queries,
        } => {
            runs::run(runs::Plan {
                runs,
                results_per_run,
                batch,
                connections,
                queries,
            })
            .await
        }
        Benchmark::Triage {
            runs,
            tests,
            results_per_run,
            batch,
            connections,
            queries,
        } => {
            triage::run(triage::Plan {
                runs,
                tests,
                results_per_run,
                batch,
                connections,
                queries,
            })
            .await
        }
        Benchmark::Ingest {
            seconds,
            batch,
            connections,
            suite,
            reference,
        } => {
            ingest::run(ingest::Settings {
                connections,
                batch,
                duration: std::time::Duration::from_secs(seconds),
                suite,
                reference,
            })
            .await
        }
        Benchmark::Pauses {
            repeat,
            parallel,
            seconds,
            batch,
            connections,
            suite,
            drain_limit,
        } => {
            let workload = match suite {
                Some(tests) => burst::Workload::RepeatingSuite { tests },
                None => burst::Workload::NewTests,
            };
            pauses::run(
                repeat,
                parallel,
                burst::Plan {
                    workload,
                    connections,
                    batch,
                    duration: std::time::Duration::from_secs(seconds),
                },
                std::time::Duration::from_secs(drain_limit),
            )
            .await
        }
        Benchmark::Report {
            megabytes,
            artifacts,
            repeat,
            unlimited_rates,
        } => {
            report::run(report::Plan {
                megabytes,
                artifacts,
                repeat,
                unlimited_rates,
            })
            .await
        }
        Benchmark::Artifacts { size_mib, rss_mib } => artifacts::run(size_mib, rss_mib).await,
        Benchmark::Web {
            runs,
            results_per_run,
            renders,
            paints,
            pages,
            rate,
            batch,
            seconds,
            browser_per_page,
        } => {
            web::run(web::Plan {
                runs,
                results_per_run,
                renders,
                paints,
                pages,
                rate,
                batch,
                seconds,
                browser_per_page,
            })
            .await
        }
    }
}
