//! Rate limits (GCRA) per client IP and per principal, with separate budgets for
//! login, reads and writes. A refusal says when to retry.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{Budget, RateLimits};

/// What a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    Login,
    Read,
    Write,
}

struct Keyed<K: Hash + Eq + Clone> {
    login: DefaultKeyedRateLimiter<K>,
    read: DefaultKeyedRateLimiter<K>,
    write: DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(limits: &RateLimits) -> Self {
        Self {
            login: RateLimiter::keyed(quota(limits.login)),
            read: RateLimiter::keyed(quota(limits.read)),
            write: RateLimiter::keyed(quota(limits.write)),
        }
    }

    fn check(&self, key: &K, spend: Spend) -> Result<(), Duration> {
        let limiter = match spend {
            Spend::Login => &self.login,
            Spend::Read => &self.read,
            Spend::Write => &self.write,
        };
        limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    fn forget_idle(&self) {
        self.login.retain_recent();
        self.read.retain_recent();
        self.write.retain_recent();
    }
}

fn quota(budget: Budget) -> Quota {
    let count = NonZeroU32::new(budget.count).unwrap_or(NonZeroU32::MIN);
    let interval = (budget.period / count.get()).max(Duration::from_nanos(1));
    Quota::with_period(interval)
        .expect("a positive interval")
        .allow_burst(count)
}

/// The budget of one thing that needs no key (one live socket's subscribes).
pub fn single(budget: Budget) -> DefaultDirectRateLimiter {
    RateLimiter::direct(quota(budget))
}

pub struct Limiter {
    by_ip: Keyed<IpAddr>,
    by_principal: Keyed<String>,
}

impl Limiter {
    pub fn new(limits: &RateLimits) -> Self {
        Self {
            by_ip: Keyed::new(limits),
            by_principal: Keyed::new(limits),
        }
    }

    /// `Err(wait)` when the client IP has spent its budget.
    pub fn check_ip(&self, ip: IpAddr, spend: Spend) -> Result<(), Duration> {
        self.by_ip.check(&ip, spend)
    }

    /// `Err(wait)` when the principal (user or API token id) has spent its budget.
    pub fn check_principal(&self, principal: &str, spend: Spend) -> Result<(), Duration> {
        self.by_principal.check(&principal.to_owned(), spend)
    }

    /// Drops the state of keys that are back at full budget, so memory follows the
    /// number of recently active clients, not all clients ever seen.
    pub fn forget_idle(&self) {
        self.by_ip.forget_idle();
        self.by_principal.forget_idle();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(count: u32) -> RateLimits {
        let budget = Budget {
            count,
            period: Duration::from_secs(60),
        };
        RateLimits {
            login: budget,
            read: budget,
            write: budget,
        }
    }

    #[test]
    fn a_burst_up_to_the_budget_passes_and_the_next_request_waits() {
        let limiter = Limiter::new(&limits(3));
        let ip = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..3 {
            assert!(limiter.check_ip(ip, Spend::Login).is_ok());
        }
        let wait = limiter.check_ip(ip, Spend::Login).unwrap_err();
        assert!(
            wait > Duration::from_secs(10) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
    }

    #[test]
    fn a_single_budget_allows_its_burst_then_refuses() {
        let budget = single(Budget {
            count: 2,
            period: Duration::from_secs(60),
        });
        assert!(budget.check().is_ok());
        assert!(budget.check().is_ok());
        assert!(budget.check().is_err());
    }

    #[test]
    fn budgets_are_separate_per_kind_and_per_client() {
        let limiter = Limiter::new(&limits(1));
        let ip = IpAddr::from([10, 0, 0, 1]);
        assert!(limiter.check_ip(ip, Spend::Login).is_ok());
        assert!(limiter.check_ip(ip, Spend::Read).is_ok());
        assert!(limiter
            .check_ip(IpAddr::from([10, 0, 0, 2]), Spend::Login)
            .is_ok());
        assert!(limiter.check_principal("user", Spend::Write).is_ok());
        assert!(limiter.check_principal("user", Spend::Write).is_err());
    }
}
