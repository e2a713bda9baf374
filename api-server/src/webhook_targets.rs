//! Where webhook deliveries may go: the guard against server-side request forgery.
//!
//! Loopback, link-local, unspecified, private, shared (CGNAT), multicast and reserved
//! addresses are refused unless the allow-list names them, by network (`10.0.0.0/8`) or by
//! host name (`tooken-sidecar.tooken.svc`). The check is made on the addresses deliveries
//! actually connect to: `GuardedResolver` resolves names itself and hands the HTTP client only
//! the addresses that pass, so a name that resolves differently later (DNS rebinding) gains
//! nothing. Address literals never reach a resolver; `TargetPolicy::check_url` covers them.

use ipnet::IpNet;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

/// One allow-list entry: a network, an address, or a host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedTarget {
    Network(IpNet),
    Host(String),
}

impl FromStr for AllowedTarget {
    type Err = String;

    fn from_str(text: &str) -> Result<AllowedTarget, String> {
        let text = text.trim();
        if let Ok(network) = text.parse::<IpNet>() {
            return Ok(AllowedTarget::Network(network.trunc()));
        }
        if let Ok(address) = text.parse::<IpAddr>() {
            return Ok(AllowedTarget::Network(IpNet::from(address)));
        }
        let host = normalise_host(text);
        let plain = !host.is_empty()
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if plain {
            Ok(AllowedTarget::Host(host))
        } else {
            Err(format!(
                "`{text}` is neither a network (10.0.0.0/8), an address nor a host name"
            ))
        }
    }
}

fn normalise_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Why a target address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Loopback,
    LinkLocal,
    Unspecified,
    Private,
    NotUnicast,
    Reserved,
}

impl Refusal {
    fn describe(self) -> &'static str {
        match self {
            Refusal::Loopback => "a loopback address",
            Refusal::LinkLocal => "a link-local address (such as a cloud metadata service)",
            Refusal::Unspecified => "an unspecified address",
            Refusal::Private => "a private address",
            Refusal::NotUnicast => "a multicast or broadcast address",
            Refusal::Reserved => "a reserved address",
        }
    }
}

/// A refused target, in words a caller can act on. The resolved address is not named, so the
/// delivery log does not map the server's network for whoever reads it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "webhook target refused: {what} is {reason}; an operator can allow it with TOOKEN_WEBHOOK_ALLOWED_TARGETS"
)]
pub struct Refused {
    what: String,
    reason: &'static str,
}

fn refused(url: &Url, reason: Refusal) -> Refused {
    Refused {
        what: url.host_str().unwrap_or_default().to_owned(),
        reason: reason.describe(),
    }
}

/// Which special range `ip` is in, if any.
fn classify(ip: IpAddr) -> Option<Refusal> {
    match ip {
        IpAddr::V4(ip) => classify_v4(ip),
        IpAddr::V6(ip) => classify_v6(ip),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Refusal> {
    let [a, b, c, _] = ip.octets();
    if a == 0 {
        Some(Refusal::Unspecified)
    } else if ip.is_loopback() {
        Some(Refusal::Loopback)
    } else if ip.is_link_local() {
        Some(Refusal::LinkLocal)
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        // 100.64.0.0/10 is shared address space, used inside clouds and carrier NATs.
        Some(Refusal::Private)
    } else if ip.is_multicast() || ip.is_broadcast() {
        Some(Refusal::NotUnicast)
    } else if a >= 240 || (a == 192 && b == 0 && c == 0) || (a == 198 && (18..20).contains(&b)) {
        Some(Refusal::Reserved)
    } else {
        None
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<Refusal> {
    // An IPv4 address inside IPv6 (::ffff:a.b.c.d, or NAT64's 64:ff9b::a.b.c.d) is judged as
    // the IPv4 address it reaches.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let segments = ip.segments();
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        return classify_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    if ip.is_unspecified() {
        Some(Refusal::Unspecified)
    } else if ip.is_loopback() {
        Some(Refusal::Loopback)
    } else if segments[0] & 0xffc0 == 0xfe80 {
        Some(Refusal::LinkLocal)
    } else if segments[0] & 0xfe00 == 0xfc00 || segments[0] & 0xffc0 == 0xfec0 {
        // Unique local (fc00::/7) and the old site-local (fec0::/10).
        Some(Refusal::Private)
    } else if ip.is_multicast() {
        Some(Refusal::NotUnicast)
    } else {
        None
    }
}

/// What deliveries may reach: every public address, and what the allow-list names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    networks: Vec<IpNet>,
    hosts: Vec<String>,
}

impl TargetPolicy {
    pub fn new(allowed: impl IntoIterator<Item = AllowedTarget>) -> TargetPolicy {
        let mut policy = TargetPolicy::default();
        for entry in allowed {
            match entry {
                AllowedTarget::Network(network) => policy.networks.push(network),
                AllowedTarget::Host(host) => policy.hosts.push(host),
            }
        }
        policy
    }

    /// Loopback allowed (`127.0.0.0/8`, `::1`): for tests and a local quick start whose
    /// receivers run on the same machine.
    pub fn allowing_loopback() -> TargetPolicy {
        TargetPolicy::new([
            AllowedTarget::Network("127.0.0.0/8".parse().expect("a network")),
            AllowedTarget::Network("::1/128".parse().expect("a network")),
        ])
    }

    fn allows_host(&self, host: &str) -> bool {
        let host = normalise_host(host);
        self.hosts.contains(&host)
    }

    /// Whether a delivery may connect to `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        let Some(refusal) = classify(ip) else {
            return Ok(());
        };
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let listed = |ip: IpAddr| self.networks.iter().any(|network| network.contains(&ip));
        if listed(ip) || mapped.is_some_and(listed) {
            Ok(())
        } else {
            Err(refusal)
        }
    }

    /// The check made when an endpoint is saved: its host as an address literal, or
    /// `localhost`, which always means loopback (RFC 6761). Other names are checked on the
    /// addresses they resolve to, at each delivery.
    pub fn check_url(&self, url: &Url) -> Result<(), Refused> {
        if let Some(url::Host::Domain(name)) = url.host() {
            let name = normalise_host(name);
            let local = name == "localhost" || name.ends_with(".localhost");
            if local && !self.allows_host(&name) {
                return self
                    .check_ip(IpAddr::V4(Ipv4Addr::LOCALHOST))
                    .map_err(|reason| refused(url, reason));
            }
        }
        self.check_literal(url)
    }

    /// The check made at each delivery on a URL whose host is an address literal, which
    /// never reaches the resolver.
    pub fn check_literal(&self, url: &Url) -> Result<(), Refused> {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        self.check_ip(ip).map_err(|reason| refused(url, reason))
    }

    /// The addresses of `host` that deliveries may use; refused when none is left.
    fn filter(&self, host: &str, addresses: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Refused> {
        if self.allows_host(host) {
            return Ok(addresses);
        }
        let mut first_refusal = None;
        let allowed: Vec<SocketAddr> = addresses
            .into_iter()
            .filter(|address| match self.check_ip(address.ip()) {
                Ok(()) => true,
                Err(refusal) => {
                    first_refusal.get_or_insert(refusal);
                    false
                }
            })
            .collect();
        match first_refusal {
            Some(refusal) if allowed.is_empty() => Err(Refused {
                what: format!("{host}, which resolves to an address that"),
                reason: refusal.describe(),
            }),
            _ => Ok(allowed),
        }
    }
}

/// The webhook client's resolver: the system's, minus every address the policy refuses.
pub struct GuardedResolver {
    pub policy: Arc<TargetPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = policy.filter(&host, found)?;
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The refusal behind a failed request, if a refusal is what failed it.
pub fn refusal_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(refused) = err.downcast_ref::<Refused>() {
            return Some(refused);
        }
        current = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: &TargetPolicy, ip: &str) -> Option<Refusal> {
        policy.check_ip(ip.parse().unwrap()).err()
    }

    #[test]
    fn special_addresses_are_refused_by_default() {
        let policy = TargetPolicy::default();
        for (ip, why) in [
            ("127.0.0.1", Refusal::Loopback),
            ("::1", Refusal::Loopback),
            ("::ffff:127.0.0.1", Refusal::Loopback),
            ("169.254.169.254", Refusal::LinkLocal),
            ("fe80::1", Refusal::LinkLocal),
            ("0.0.0.0", Refusal::Unspecified),
            ("::", Refusal::Unspecified),
            ("10.0.0.1", Refusal::Private),
            ("172.16.5.4", Refusal::Private),
            ("192.168.1.1", Refusal::Private),
            ("100.100.100.200", Refusal::Private),
            ("fd00::1", Refusal::Private),
            ("64:ff9b::a9fe:a9fe", Refusal::LinkLocal),
            ("224.0.0.1", Refusal::NotUnicast),
            ("255.255.255.255", Refusal::NotUnicast),
            ("240.0.0.1", Refusal::Reserved),
        ] {
            assert_eq!(refused(&policy, ip), Some(why), "{ip}");
        }
        for ip in [
            "93.184.215.14",
            "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
            "172.32.0.1",
        ] {
            assert_eq!(refused(&policy, ip), None, "{ip}");
        }
    }

    #[test]
    fn the_allow_list_admits_its_networks_only() {
        let policy = TargetPolicy::new(
            ["10.96.0.0/12", "127.0.0.1"].map(|entry| entry.parse::<AllowedTarget>().unwrap()),
        );
        assert_eq!(refused(&policy, "10.96.0.10"), None);
        assert_eq!(refused(&policy, "127.0.0.1"), None);
        assert_eq!(refused(&policy, "::ffff:127.0.0.1"), None);
        assert_eq!(refused(&policy, "127.0.0.2"), Some(Refusal::Loopback));
        assert_eq!(refused(&policy, "10.0.0.1"), Some(Refusal::Private));
        assert_eq!(
            refused(&policy, "169.254.169.254"),
            Some(Refusal::LinkLocal)
        );
    }

    #[test]
    fn allow_list_entries_parse() {
        assert_eq!(
            "Tooken-Sidecar.tooken.svc."
                .parse::<AllowedTarget>()
                .unwrap(),
            AllowedTarget::Host("tooken-sidecar.tooken.svc".into())
        );
        assert_eq!(
            "10.1.2.3/8".parse::<AllowedTarget>().unwrap(),
            AllowedTarget::Network("10.0.0.0/8".parse().unwrap())
        );
        for bad in ["", "10.0.0.0/33", "http://x", "a b", "x..y"] {
            assert!(bad.parse::<AllowedTarget>().is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_are_checked_by_their_literal_host() {
        let policy = TargetPolicy::default();
        let check = |url: &str| policy.check_url(&Url::parse(url).unwrap());
        let err = check("http://169.254.169.254/latest/meta-data/").unwrap_err();
        assert!(err.to_string().contains("link-local"), "{err}");
        assert!(check("http://[::1]:8080/x").is_err());
        assert!(check("http://localhost:6443/api").is_err());
        assert!(check("http://api.localhost./x").is_err());
        // Decimal and hex spellings are normalised by URL parsing, then checked.
        assert!(check("http://2130706433/").is_err());
        assert!(check("http://0x7f.1/").is_err());
        assert!(check("http://10.0.0.1/x").is_err());
        assert!(check("https://hooks.example.com/x").is_ok());
    }

    #[test]
    fn resolved_addresses_are_filtered_and_named_hosts_pass() {
        let policy = TargetPolicy::new(["sidecar.tooken.svc".parse().unwrap()]);
        let addresses: Vec<SocketAddr> = vec![
            "10.0.0.5:0".parse().unwrap(),
            "93.184.215.14:0".parse().unwrap(),
        ];
        assert_eq!(
            policy
                .filter("hooks.example.com", addresses.clone())
                .unwrap(),
            vec!["93.184.215.14:0".parse::<SocketAddr>().unwrap()]
        );
        let err = policy
            .filter("rebind.example.com", vec!["127.0.0.1:0".parse().unwrap()])
            .unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        assert_eq!(
            policy
                .filter("sidecar.tooken.svc", addresses.clone())
                .unwrap(),
            addresses
        );
    }

    #[tokio::test]
    async fn the_resolver_hands_out_only_allowed_addresses() {
        let strict = GuardedResolver {
            policy: Arc::new(TargetPolicy::default()),
        };
        let Err(err) = strict.resolve("localhost".parse().unwrap()).await else {
            panic!("localhost resolved to an allowed address");
        };
        let refused = refusal_in(&*err).expect("the error is a refusal");
        assert!(refused.to_string().contains("loopback"), "{refused}");
        let loopback = GuardedResolver {
            policy: Arc::new(TargetPolicy::allowing_loopback()),
        };
        let Ok(addresses) = loopback.resolve("localhost".parse().unwrap()).await else {
            panic!("localhost did not resolve");
        };
        let addresses: Vec<SocketAddr> = addresses.collect();
        assert!(!addresses.is_empty());
        assert!(
            addresses.iter().all(|a| a.ip().is_loopback()),
            "{addresses:?}"
        );
    }
}
