//! Egress rules: where an `api_request` may connect (the SSRF guard of issue 9).
//!
//! A flow's URL can carry customer data in its path and query, and a whole base URL can come from a
//! secret or a flow variable, so the executor checks the address it is about to connect to, not
//! the text of the URL. Link-local addresses and the cloud metadata endpoints (169.254.0.0/16,
//! fe80::/10, fd00:ec2::254, and the IPv4-mapped forms of these) are refused unless the policy
//! allows them. Loopback and private ranges stay allowed: tests and intranet APIs live there.
//!
//! Literal IP hosts are checked before sending ([`EgressPolicy::check_url`]); names are checked when
//! they resolve, by [`EgressResolver`], reqwest's DNS resolver, so a name that resolves (or later
//! re-resolves) to a metadata address is refused as well. This module does not do allow-lists or
//! proxying.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Where outside calls may go.
#[derive(Clone, Debug, Default)]
pub struct EgressPolicy {
    /// Allow link-local and cloud metadata addresses (169.254.0.0/16, fe80::/10, fd00:ec2::254).
    /// Off by default.
    pub allow_link_local: bool,
}

/// The AWS metadata endpoint over IPv6.
const AWS_METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254);

impl EgressPolicy {
    /// Why a connection to `ip` is refused, or `None` when it is allowed.
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        if self.allow_link_local {
            return None;
        }
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        match ip {
            IpAddr::V4(v4) if v4.octets() == [169, 254, 169, 254] => Some("cloud metadata"),
            IpAddr::V4(v4) if v4.is_link_local() => Some("link-local"),
            IpAddr::V6(v6) if v6 == AWS_METADATA_V6 => Some("cloud metadata"),
            IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => Some("link-local"),
            _ => None,
        }
    }

    /// Checks a URL whose host is a literal IP address (names are checked when they resolve).
    /// The error is the reason, without the URL's path or query.
    pub fn check_url(&self, url: &Url) -> Result<(), String> {
        let ip = match url.host() {
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(Host::Domain(_)) | None => return Ok(()),
        };
        match self.refusal(ip) {
            Some(kind) => Err(format!("{ip} is a {kind} address")),
            None => Ok(()),
        }
    }
}

/// A name resolved only to refused addresses. Found again in reqwest's error chain by the
/// executor, which reports it as a refused destination rather than a connection failure.
#[derive(Debug)]
pub(crate) struct EgressRefused {
    pub host: String,
    pub ip: IpAddr,
    pub kind: &'static str,
}

impl std::fmt::Display for EgressRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} resolves to {}, a {} address",
            self.host, self.ip, self.kind
        )
    }
}

impl std::error::Error for EgressRefused {}

/// How names become addresses: the system resolver in production, a table in tests.
pub(crate) type Lookup = Arc<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>
        + Send
        + Sync,
>;

/// The system resolver (getaddrinfo through tokio).
pub(crate) fn system_lookup() -> Lookup {
    Arc::new(|host: String| {
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.collect()) })
    })
}

/// reqwest's DNS resolver with the egress rules applied: refused addresses are dropped, and a name
/// with nothing else left fails with [`EgressRefused`].
pub(crate) struct EgressResolver {
    pub policy: EgressPolicy,
    pub lookup: Lookup,
}

impl Resolve for EgressResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        let lookup = (self.lookup)(host.clone());
        Box::pin(async move {
            let found = lookup.await?;
            let mut refused = None;
            let mut allowed = Vec::with_capacity(found.len());
            for addr in found {
                match policy.refusal(addr.ip()) {
                    Some(kind) => refused = refused.or(Some((addr.ip(), kind))),
                    None => allowed.push(addr),
                }
            }
            if let (true, Some((ip, kind))) = (allowed.is_empty(), refused) {
                return Err(Box::new(EgressRefused { host, ip, kind })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn refused(text: &str) -> Option<&'static str> {
        EgressPolicy::default().refusal(text.parse().expect("an IP"))
    }

    #[test]
    fn link_local_and_metadata_addresses_are_refused() {
        assert_eq!(refused("169.254.169.254"), Some("cloud metadata"));
        assert_eq!(refused("169.254.1.2"), Some("link-local"));
        assert_eq!(refused("fd00:ec2::254"), Some("cloud metadata"));
        assert_eq!(refused("fe80::1"), Some("link-local"));
        assert_eq!(refused("febf::1"), Some("link-local"));
        assert_eq!(refused("::ffff:169.254.169.254"), Some("cloud metadata"));
    }

    #[test]
    fn loopback_private_and_public_addresses_are_allowed() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.10",
            "172.16.5.4",
            "8.8.8.8",
            "::1",
            "fd00::1",
            "fec0::1",
            "2001:db8::1",
        ] {
            assert_eq!(refused(ip), None, "{ip}");
        }
    }

    #[test]
    fn allow_link_local_allows_everything() {
        let policy = EgressPolicy {
            allow_link_local: true,
        };
        assert_eq!(
            policy.refusal("169.254.169.254".parse().expect("an IP")),
            None
        );
        assert!(policy
            .check_url(&Url::parse("http://169.254.169.254/latest").expect("a URL"))
            .is_ok());
    }

    #[test]
    fn literal_ip_urls_are_checked_and_names_are_left_to_the_resolver() {
        let policy = EgressPolicy::default();
        let error = policy
            .check_url(
                &Url::parse("http://169.254.169.254/latest/meta-data?token=x").expect("a URL"),
            )
            .expect_err("refused");
        assert_eq!(error, "169.254.169.254 is a cloud metadata address");
        assert!(policy
            .check_url(&Url::parse("http://[fe80::1]:8080/").expect("a URL"))
            .is_err());
        assert!(policy
            .check_url(&Url::parse("http://127.0.0.1:8080/").expect("a URL"))
            .is_ok());
        assert!(policy
            .check_url(&Url::parse("https://metadata.example/").expect("a URL"))
            .is_ok());
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses_and_fails_when_none_remain() {
        let lookup: Lookup = Arc::new(|host: String| {
            Box::pin(async move {
                Ok(match host.as_str() {
                    "mixed.test" => vec![
                        "169.254.169.254:0".parse().expect("addr"),
                        "10.0.0.7:0".parse().expect("addr"),
                    ],
                    _ => vec!["169.254.169.254:0".parse().expect("addr")],
                })
            })
        });
        let resolver = EgressResolver {
            policy: EgressPolicy::default(),
            lookup,
        };
        let mixed: Vec<SocketAddr> = resolver
            .resolve(Name::from_str("mixed.test").expect("a name"))
            .await
            .expect("resolves")
            .collect();
        assert_eq!(
            mixed,
            vec!["10.0.0.7:0".parse::<SocketAddr>().expect("addr")]
        );
        let error = resolver
            .resolve(Name::from_str("metadata.test").expect("a name"))
            .await
            .err()
            .expect("refused");
        assert_eq!(
            error.to_string(),
            "metadata.test resolves to 169.254.169.254, a cloud metadata address"
        );
    }
}
