//! Ports for child processes that take a fixed port (nats-server cluster routes, s3s-fs,
//! gateways). A port is chosen here and bound later by the child, so it must not be
//! taken in between: ports come from below the kernel's ephemeral range (which
//! `bind(0)` and every outgoing connection draw from), at random so concurrent test
//! processes rarely pick the same one, and never twice in one process.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::net::TcpListener;
use std::ops::Range;
use std::sync::{Mutex, PoisonError};

/// Below Linux's default ephemeral range (32768-60999) and above the well-known and
/// commonly configured service ports.
const RANGE: Range<u16> = 20_000..32_000;

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port on 127.0.0.1 that nothing listens on now and that this process has not handed
/// out before.
pub fn free_port() -> u16 {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    let span = u64::from(RANGE.end - RANGE.start);
    for _ in 0..1000 {
        // The remainder is below the range's span, which fits a u16.
        let port = RANGE.start + (random() % span) as u16;
        if !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            return port;
        }
    }
    panic!("no free port in {RANGE:?} after 1000 tries");
}

fn random() -> u64 {
    RandomState::new().build_hasher().finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_never_handed_out_twice_and_lie_outside_the_ephemeral_range() {
        let ports: Vec<u16> = (0..500).map(|_| free_port()).collect();
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        assert!(ports.iter().all(|port| RANGE.contains(port)));
    }
}
