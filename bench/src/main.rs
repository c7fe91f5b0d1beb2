//! `verdict-bench`: benchmarks of a whole Verdict system, started in-process on a real
//! nats-server on this machine (services, bus and load generator share its cores).
//! Run in release: `cargo run --release -p verdict-bench -- <benchmark>`.

mod artifacts;
mod auth;
mod fixture;
mod import;
mod live;
mod process;
mod runs;
mod stats;

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
    /// Live fan-out: memory per viewer, frames per second per core and 202-to-viewer
    /// latency of a gateway, against nats-server's WebSocket listener serving the same
    /// frames. Needs `cargo build --release -p verdict-cli` (the gateway runs as its own
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
    },
    /// Streaming parse of a large generated JUnit report: time and peak memory.
    Import {
        #[arg(long, default_value_t = 50)]
        megabytes: usize,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().benchmark {
        Benchmark::Auth { logins, requests } => auth::run(logins, requests).await,
        Benchmark::Import { megabytes } => import::run(megabytes),
        Benchmark::Live {
            viewers,
            rate,
            batch,
            seconds,
            sample_every,
            deflate,
        } => {
            live::run(live::Plan {
                viewers,
                rate,
                batch,
                seconds,
                sample_every: sample_every.max(1),
                deflate,
            })
            .await
        }
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
        Benchmark::Artifacts { size_mib, rss_mib } => artifacts::run(size_mib, rss_mib).await,
    }
}
