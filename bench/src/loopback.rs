//! The machine's own floor for live fan-out, with no Verdict, WebSocket or bus in it:
//! one process writes a message to each of N loopback TCP sockets, `rate` rounds a
//! second, from two threads; another process (`verdict-bench loopback-reader`) reads
//! them with a bare edge-triggered epoll loop. Each message carries the time its round
//! started, so the reader times every delivery. What this shows is what the kernel's
//! TCP path costs per message on this machine, and how long one round to N sockets
//! takes when the writing and the reading share its cores.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{ensure, Context};

use crate::stats::{ms, Summary};

pub struct Plan {
    pub sockets: usize,
    pub bytes: usize,
    pub rounds: usize,
    /// Rounds per second.
    pub rate: u64,
}

/// Sends the rounds and prints what the reader measured.
pub fn run(plan: Plan) -> anyhow::Result<()> {
    ensure!(
        plan.bytes >= 8,
        "a message holds its round's start time: 8 bytes at least"
    );
    crate::live::raise_fd_limit()?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let reader = Command::new(std::env::current_exe()?)
        .arg("loopback-reader")
        .args(["--address", &listener.local_addr()?.to_string()])
        .args(["--sockets", &plan.sockets.to_string()])
        .args(["--bytes", &plan.bytes.to_string()])
        .args(["--rounds", &plan.rounds.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the reader")?;
    let mut sockets = Vec::with_capacity(plan.sockets);
    for _ in 0..plan.sockets {
        let (socket, _) = listener.accept()?;
        socket.set_nodelay(true)?;
        sockets.push(socket);
    }
    // Let the reader register every socket with epoll first.
    std::thread::sleep(Duration::from_secs(1));
    let every = Duration::from_nanos(1_000_000_000 / plan.rate.max(1));
    let mut message = vec![b'x'; plan.bytes];
    let cpu_before = own_cpu_seconds();
    for _ in 0..plan.rounds {
        let started = monotonic_ns();
        message[..8].copy_from_slice(&started.to_le_bytes());
        write_to_every(&sockets, &message);
        let spent = Duration::from_nanos(monotonic_ns().saturating_sub(started));
        std::thread::sleep(every.saturating_sub(spent));
    }
    let writing = own_cpu_seconds() - cpu_before;
    let output = reader.wait_with_output()?;
    ensure!(output.status.success(), "the reader failed");
    let writes = (plan.sockets * plan.rounds) as f64;
    println!(
        "{} sockets, {} rounds of {} bytes at {}/s; writer and reader on this machine.\n",
        plan.sockets, plan.rounds, plan.bytes, plan.rate
    );
    println!(
        "| round start → read p50 | p99 | max | writer CPU per message | reader CPU per message |"
    );
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "{} {:.2} µs |",
        String::from_utf8_lossy(&output.stdout).trim_end(),
        writing * 1e6 / writes
    );
    Ok(())
}

/// Writes `message` to every socket, half of them on each of two threads, with blocking
/// writes. A failed write is skipped: it shows as a message the reader never gets.
pub fn write_to_every(sockets: &[TcpStream], message: &[u8]) {
    let half = sockets.len().div_ceil(2).max(1);
    std::thread::scope(|scope| {
        for part in sockets.chunks(half) {
            scope.spawn(move || {
                for socket in part {
                    let _ = (&*socket).write_all(message);
                }
            });
        }
    });
}

/// The reader's side (a process of its own): connects, reads every message of every
/// round, and prints the first columns of the table row.
pub fn read(address: &str, sockets: usize, bytes: usize, rounds: usize) -> anyhow::Result<()> {
    crate::live::raise_fd_limit()?;
    let mut streams = Vec::with_capacity(sockets);
    for _ in 0..sockets {
        let stream = TcpStream::connect(address)?;
        stream.set_nonblocking(true)?;
        streams.push(stream);
    }
    let poll = Epoll::new()?;
    for (index, stream) in streams.iter().enumerate() {
        poll.watch(stream, index as u64)?;
    }
    let mut messages = vec![Message::default(); sockets];
    let mut chunk = vec![0; 64 * 1024];
    let mut latencies = Vec::with_capacity(sockets * rounds);
    let mut cpu_from = None;
    while latencies.len() < sockets * rounds {
        let ready = poll.wait(Duration::from_secs(10))?;
        ensure!(!ready.is_empty(), "no message for 10 s");
        cpu_from.get_or_insert_with(own_cpu_seconds);
        for index in ready {
            let (stream, message) = (&streams[index as usize], &mut messages[index as usize]);
            // Edge-triggered: read until the socket has nothing more.
            loop {
                match (&*stream).read(&mut chunk) {
                    Ok(0) => break,
                    Ok(read) => message.take(&chunk[..read], bytes, &mut latencies),
                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(err) => return Err(err.into()),
                }
            }
        }
    }
    let reading = own_cpu_seconds() - cpu_from.unwrap_or_default();
    let summary = Summary::of(latencies);
    print!(
        "| {} | {} | {} | {:.2} µs |",
        ms(summary.p50),
        ms(summary.p99),
        ms(summary.max),
        reading * 1e6 / (sockets * rounds) as f64
    );
    Ok(())
}

/// How far a socket is into its current message, and that message's start time as far
/// as read.
#[derive(Clone, Default)]
struct Message {
    read: usize,
    started: [u8; 8],
}

impl Message {
    /// Takes `data` as it comes (messages split anywhere), timing each whole message.
    fn take(&mut self, mut data: &[u8], bytes: usize, latencies: &mut Vec<Duration>) {
        while !data.is_empty() {
            let taken = (bytes - self.read).min(data.len());
            if self.read < 8 {
                let stamp = (8 - self.read).min(taken);
                self.started[self.read..self.read + stamp].copy_from_slice(&data[..stamp]);
            }
            self.read += taken;
            data = &data[taken..];
            if self.read == bytes {
                let started = u64::from_le_bytes(self.started);
                latencies.push(Duration::from_nanos(monotonic_ns().saturating_sub(started)));
                self.read = 0;
            }
        }
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the same clock in both processes.
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the struct passed by pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// User and system CPU time of this process so far, in seconds.
fn own_cpu_seconds() -> f64 {
    crate::process::cpu_seconds(std::process::id()).unwrap_or_default()
}

/// A bare edge-triggered epoll set.
struct Epoll(std::os::fd::OwnedFd);

impl Epoll {
    fn new() -> anyhow::Result<Self> {
        // SAFETY: epoll_create1 takes no pointers; a valid descriptor is owned from here.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        ensure!(
            fd >= 0,
            "epoll_create1: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: `fd` is a new descriptor nothing else owns.
        Ok(Self(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }))
    }

    fn watch(&self, stream: &TcpStream, token: u64) -> anyhow::Result<()> {
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLET) as u32,
            u64: token,
        };
        // SAFETY: both descriptors are open; the event is read during the call only.
        let added = unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                stream.as_raw_fd(),
                &mut event,
            )
        };
        ensure!(added == 0, "epoll_ctl: {}", std::io::Error::last_os_error());
        Ok(())
    }

    /// The tokens of the sockets that became readable, empty after `timeout`.
    fn wait(&self, timeout: Duration) -> anyhow::Result<Vec<u64>> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 1024];
        let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        loop {
            // SAFETY: the kernel writes at most `events.len()` entries into the array.
            let count = unsafe {
                libc::epoll_wait(
                    self.0.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as i32,
                    millis,
                )
            };
            if let Ok(count) = usize::try_from(count) {
                return Ok(events[..count].iter().map(|event| event.u64).collect());
            }
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return Err(error.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message_at(started: u64, bytes: usize) -> Vec<u8> {
        let mut message = vec![b'x'; bytes];
        message[..8].copy_from_slice(&started.to_le_bytes());
        message
    }

    #[test]
    fn messages_split_anywhere_are_each_timed_once() {
        // Started a second ago: a misread start time would not give about a second.
        let started = monotonic_ns() - 1_000_000_000;
        let stream: Vec<u8> = [message_at(started, 20), message_at(started, 20)].concat();
        for split in [1, 3, 8, 9, 20, 25, 40] {
            let mut message = Message::default();
            let mut latencies = Vec::new();
            for piece in stream.chunks(split) {
                message.take(piece, 20, &mut latencies);
            }
            assert_eq!(latencies.len(), 2, "pieces of {split}");
            assert!(latencies
                .iter()
                .all(|latency| *latency < Duration::from_secs(5)));
        }
    }
}
