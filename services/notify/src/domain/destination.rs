//! Where a webhook may send: `http`/`https` URLs of bounded length whose host resolves
//! only to public addresses, or to networks the operator allowed
//! (`VERDICT_NOTIFY_ALLOWED_NETWORKS`). Checked when a webhook is saved (to answer with
//! a clear error) and again on every connection, on the addresses actually connected
//! to, since a name can resolve elsewhere later.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::Url;
use verdict_contracts::notify::MAX_URL_BYTES;

/// How long resolving a webhook's host may take when it is saved.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A webhook URL that is well formed (its addresses not checked yet).
pub fn parse_url(text: &str) -> Result<Url, String> {
    if text.len() > MAX_URL_BYTES {
        return Err(format!("must be at most {MAX_URL_BYTES} bytes"));
    }
    let url = Url::parse(text).map_err(|err| format!("is not a URL: {err}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if url.host().is_none() {
        return Err("must name a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not hold credentials".into());
    }
    Ok(url)
}

/// Why an address may not be reached, or `None` when it may.
pub fn refusal(address: IpAddr, allowed: &[IpNet]) -> Option<&'static str> {
    if allowed.iter().any(|network| network.contains(&address)) {
        return None;
    }
    let address = match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    match address {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

fn refusal_v4(address: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = address.octets();
    if address.is_loopback() {
        Some("a loopback address")
    } else if address.is_private() || (a == 100 && (64..128).contains(&b)) {
        // RFC 1918, and the shared address space of carrier-grade NAT (RFC 6598).
        Some("a private address")
    } else if address.is_link_local() {
        Some("a link-local address")
    } else if address.is_unspecified()
        || address.is_broadcast()
        || address.is_multicast()
        || a == 0
        || a >= 240
    {
        Some("not a unicast address")
    } else {
        None
    }
}

fn refusal_v6(address: Ipv6Addr) -> Option<&'static str> {
    let first = address.segments()[0];
    if address.is_loopback() {
        Some("a loopback address")
    } else if first & 0xfe00 == 0xfc00 {
        Some("a private address")
    } else if first & 0xffc0 == 0xfe80 {
        Some("a link-local address")
    } else if address.is_unspecified() || address.is_multicast() {
        Some("not a unicast address")
    } else {
        None
    }
}

/// The addresses `url` leads to, once every one of them is allowed.
pub async fn resolve(url: &Url, allowed: &[IpNet]) -> Result<Vec<SocketAddr>, String> {
    let host = url.host_str().ok_or("must name a host")?;
    let port = url.port_or_known_default().unwrap_or(80);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> =
        tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| format!("its host `{host}` did not resolve within {RESOLVE_TIMEOUT:?}"))?
            .map_err(|_| format!("its host `{host}` does not resolve"))?
            .collect();
    if addresses.is_empty() {
        return Err(format!("its host `{host}` does not resolve"));
    }
    check_all(host, &addresses, allowed)?;
    Ok(addresses)
}

fn check_all(host: &str, addresses: &[SocketAddr], allowed: &[IpNet]) -> Result<(), String> {
    for address in addresses {
        if let Some(reason) = refusal(address.ip(), allowed) {
            return Err(format!(
                "its host `{host}` resolves to {}, {reason}; only public addresses may be reached unless VERDICT_NOTIFY_ALLOWED_NETWORKS names the network",
                address.ip()
            ));
        }
    }
    Ok(())
}

/// The HTTP client's name resolution: the system resolver, with every refused address
/// failing the connection. (URLs with an address for a host do not resolve; the sender
/// checks those itself with [`resolve`].)
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    pub allowed: Arc<Vec<IpNet>>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allowed = self.allowed.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            check_all(&host, &addresses, &allowed)?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn private_loopback_and_link_local_addresses_are_refused() {
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(refusal(ip(address), &[]).is_some(), "{address}");
        }
    }

    #[test]
    fn public_addresses_are_reached() {
        for address in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert_eq!(refusal(ip(address), &[]), None, "{address}");
        }
    }

    #[test]
    fn allowed_networks_open_their_addresses_only() {
        let allowed = verdict_settings::parse_networks("127.0.0.1,10.0.0.0/8").unwrap();
        assert_eq!(refusal(ip("127.0.0.1"), &allowed), None);
        assert_eq!(refusal(ip("10.200.0.1"), &allowed), None);
        assert!(refusal(ip("127.0.0.2"), &allowed).is_some());
        assert!(refusal(ip("192.168.0.1"), &allowed).is_some());
    }

    #[test]
    fn urls_must_be_http_with_a_host_and_no_credentials() {
        assert!(parse_url("https://hooks.example.com/x?y=1").is_ok());
        assert!(parse_url("ftp://example.com/")
            .unwrap_err()
            .contains("http"));
        assert!(parse_url("not a url").unwrap_err().contains("not a URL"));
        assert!(parse_url("https://user:pw@example.com/").is_err());
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert!(parse_url(&long).unwrap_err().contains("2048"));
    }

    #[tokio::test]
    async fn a_loopback_url_is_refused_with_its_address_and_the_setting_named() {
        let url = parse_url("http://127.0.0.1:9/hook").unwrap();
        let err = resolve(&url, &[]).await.unwrap_err();
        assert!(err.contains("127.0.0.1, a loopback address"), "{err}");
        assert!(err.contains("VERDICT_NOTIFY_ALLOWED_NETWORKS"), "{err}");
        let allowed = verdict_settings::parse_networks("127.0.0.0/8").unwrap();
        assert_eq!(resolve(&url, &allowed).await.unwrap().len(), 1);
    }
}
