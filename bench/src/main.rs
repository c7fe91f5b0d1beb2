//! `verdict-bench`: benchmarks of a whole Verdict system, started in-process on a real
//! nats-server on this machine (services, bus and load generator share its cores).
//! Run in release: `cargo run --release -p verdict-bench -- <benchmark>`.

mod artifacts;
mod auth;
mod stats;

use clap::{Parser, Subcommand};

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().benchmark {
        Benchmark::Auth { logins, requests } => auth::run(logins, requests).await,
        Benchmark::Artifacts { size_mib, rss_mib } => artifacts::run(size_mib, rss_mib).await,
    }
}
