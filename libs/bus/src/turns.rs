//! Turns: work started in one order, done in that order. A handler given overlapping
//! rounds (see [`crate::consume::WorkQueue::rounds_in_flight`]) prepares each round as
//! soon as it has it, and takes a turn for the part that must follow the round before
//! (applying it, announcing it).
//!
//! A turn ends when it is dropped, used or not, so a handler that fails or is cancelled
//! never holds up the rounds after it.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::watch;

/// Hands out turns in order. Take a round's turn when the round arrives, before any
/// waiting.
#[derive(Debug, Default)]
pub struct Turns {
    taken: u64,
    served: Arc<watch::Sender<Served>>,
}

impl Turns {
    /// The turn after every one taken before it.
    pub fn take(&mut self) -> Turn {
        let number = self.taken;
        self.taken += 1;
        Turn {
            number,
            served: self.served.clone(),
        }
    }
}

/// One place in the order: [`Turn::wait`] returns once every earlier turn has ended.
#[derive(Debug)]
pub struct Turn {
    number: u64,
    served: Arc<watch::Sender<Served>>,
}

impl Turn {
    /// Waits until every turn taken before this one has ended.
    pub async fn wait(&self) {
        let mut served = self.served.subscribe();
        // The sender lives as long as this turn, so the wait cannot fail.
        let _ = served.wait_for(|served| served.next == self.number).await;
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.served.send_modify(|served| served.end(self.number));
    }
}

/// Which turns have ended: all before `next`, and those in `early`.
#[derive(Debug, Default)]
struct Served {
    next: u64,
    /// Turns that ended before an earlier one did (dropped while waiting).
    early: BTreeSet<u64>,
}

impl Served {
    fn end(&mut self, number: u64) {
        if number != self.next {
            self.early.insert(number);
            return;
        }
        self.next += 1;
        while self.early.remove(&self.next) {
            self.next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Whether `turn.wait()` returns within a moment.
    async fn is_served(turn: &Turn) -> bool {
        tokio::time::timeout(Duration::from_millis(50), turn.wait())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn the_first_turn_is_served_at_once() {
        let mut turns = Turns::default();
        assert!(is_served(&turns.take()).await);
    }

    #[tokio::test]
    async fn a_turn_waits_until_the_one_before_it_ends() {
        let mut turns = Turns::default();
        let first = turns.take();
        let second = turns.take();

        assert!(!is_served(&second).await);
        drop(first);
        assert!(is_served(&second).await);
    }

    #[tokio::test]
    async fn a_later_turn_that_ends_early_does_not_let_the_ones_after_it_jump_ahead() {
        let mut turns = Turns::default();
        let first = turns.take();
        let second = turns.take();
        let third = turns.take();

        drop(second);
        assert!(!is_served(&third).await);
        drop(first);
        assert!(is_served(&third).await);
    }

    #[tokio::test]
    async fn a_turn_waiting_is_woken_when_its_time_comes() {
        let mut turns = Turns::default();
        let first = turns.take();
        let second = turns.take();
        let waiting = tokio::spawn(async move { second.wait().await });

        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .unwrap();
    }
}
