//! The address a request really comes from. Behind a load balancer every connection
//! comes from the balancer; it names the client in `X-Forwarded-For`, which is believed
//! only when the connection comes from a proxy this gateway was told to trust.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// `VERDICT_TRUSTED_PROXIES`: addresses and networks of the load balancers in front of
/// the gateway (comma-separated, e.g. `10.0.0.0/8,127.0.0.1`). Empty by default: the
/// connection's peer is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        verdict_settings::parse_networks(s).map(TrustedProxies)
    }
}

impl TrustedProxies {
    pub(crate) fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(&address))
    }

    /// The client of a request that arrived from `peer`: the nearest address in
    /// `X-Forwarded-For` that is not a trusted proxy, when `peer` is one; else `peer`.
    /// Entries left of the first untrusted one were written by the client itself and
    /// prove nothing.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map_while(|entry| entry.trim().parse().ok())
            .collect();
        forwarded
            .into_iter()
            .rev()
            .find(|address| !self.trusts(*address))
            .unwrap_or(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_it_claims() {
        let proxies = TrustedProxies::default();
        assert_eq!(
            proxies.client(ip("10.0.0.5"), &headers(&["203.0.113.7"])),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_forwarded_client_counts() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        assert_eq!(
            proxies.client(ip("10.0.0.5"), &headers(&["203.0.113.7"])),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn addresses_a_client_wrote_itself_are_ignored() {
        let proxies: TrustedProxies = "10.0.0.5".parse().unwrap();
        let forged = headers(&["198.51.100.1, 203.0.113.7"]);
        assert_eq!(proxies.client(ip("10.0.0.5"), &forged), ip("203.0.113.7"));
    }

    #[test]
    fn a_chain_of_trusted_proxies_is_walked_back_to_the_client() {
        let proxies: TrustedProxies = "10.0.0.0/8, 192.168.1.1".parse().unwrap();
        let chain = headers(&["203.0.113.7, 192.168.1.1", "10.1.2.3"]);
        assert_eq!(proxies.client(ip("10.0.0.5"), &chain), ip("203.0.113.7"));
    }

    #[test]
    fn a_trusted_peer_without_a_usable_header_is_the_client() {
        let proxies: TrustedProxies = "10.0.0.5".parse().unwrap();
        assert_eq!(
            proxies.client(ip("10.0.0.5"), &headers(&["garbage"])),
            ip("10.0.0.5")
        );
        assert_eq!(
            proxies.client(ip("10.0.0.5"), &HeaderMap::new()),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn entries_that_are_not_addresses_are_refused() {
        assert!("10.0.0.0/8,proxy.local".parse::<TrustedProxies>().is_err());
    }
}
