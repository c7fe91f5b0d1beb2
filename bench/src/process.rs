//! Parts of the system run as their own processes, so their memory and CPU can be read.

use std::path::PathBuf;

use anyhow::{ensure, Context};

/// The `verdict` binary next to this one.
pub fn verdict_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let binary = exe.with_file_name("verdict");
    ensure!(
        binary.is_file(),
        "{} not found: build it with `cargo build --release -p verdict-cli` first",
        binary.display()
    );
    Ok(binary)
}

/// A `VmRSS`/`VmHWM`-style field of `/proc/<pid>/status`, in KiB.
pub fn memory_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// CPU time (user + system) the process has used so far, in seconds.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let after_name = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..13)
        .context("short stat")?
        .iter()
        .map(|field| field.parse::<u64>().unwrap_or(0))
        .sum();
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(ticks as f64 / per_second)
}
