//! The client address of a request: the TCP peer, or, when the peer is one of
//! `server.trusted_proxies`, the address that proxy says it forwarded the request for, in the one
//! header `server.forwarded_header` names (`X-Forwarded-For`, or `Forwarded: for=` of RFC 7239;
//! the other is ignored, because a proxy passes on whatever the client put there). Per-address
//! limits, the account limits and the logs use it; forwarding headers from anyone else are
//! ignored, so a client cannot pick its own address.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};
use ipnet::IpNet;

use crate::config::{ForwardedHeader, ProxyNet};

/// The proxies whose forwarding header is believed, and which header that is.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ForwardedHeader,
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

impl TrustedProxies {
    pub fn new(nets: &[ProxyNet], header: ForwardedHeader) -> Self {
        Self { nets: nets.iter().map(|n| n.0).collect(), header }
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request that arrived from `peer` with `headers`: walking the
    /// forwarding chain from the nearest hop, the first address that is not a trusted proxy.
    /// An entry that is not an address (`unknown`, an obfuscated name) ends the walk at the hop
    /// that reported it.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let chain = match self.header {
            ForwardedHeader::XForwardedFor => x_forwarded_for(headers),
            ForwardedHeader::Forwarded => forwarded_for(headers),
        };
        let mut client = peer;
        for hop in chain.iter().rev() {
            match hop {
                Some(ip) => {
                    client = *ip;
                    if !self.trusts(*ip) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }
}

/// An IPv4 address mapped into IPv6 (a dual-stack listener's peers) is matched as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The `for=` addresses of every `Forwarded` header, first hop first.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for value in headers.get_all(axum::http::header::FORWARDED) {
        let Ok(value) = value.to_str() else {
            hops.push(None);
            continue;
        };
        for element in value.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                name.trim().eq_ignore_ascii_case("for").then(|| value.trim().trim_matches('"'))
            });
            if let Some(node) = node {
                hops.push(parse_node(node));
            }
        }
    }
    hops
}

/// The addresses of every `X-Forwarded-For` header, first hop first.
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(',').map(str::trim).collect::<Vec<_>>())
        .filter(|node| !node.is_empty())
        .map(parse_node)
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:80`, `::1`, `[::1]`, `[::1]:80`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(canonical(addr.ip()));
    }
    node.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')).and_then(|ip| ip.parse().ok()).map(canonical)
}

/// In a request's extensions when it came from a trusted proxy, whose forwarding headers
/// (`X-Forwarded-Proto` too) may then be believed.
#[derive(Debug, Clone, Copy)]
pub struct FromTrustedProxy;

/// The client address as the server resolved it (an extractor; the server puts it into every
/// request's extensions).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The client address of a request: what the server resolved through trusted proxies, else
    /// the TCP peer.
    pub fn of<B>(req: &axum::http::Request<B>) -> IpAddr {
        Self::from_extensions(req.extensions())
    }

    fn from_extensions(extensions: &axum::http::Extensions) -> IpAddr {
        if let Some(ClientAddr(addr)) = extensions.get::<ClientAddr>() {
            return *addr;
        }
        extensions.get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(Self(Self::from_extensions(&parts.extensions)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(nets: &[&str], header: ForwardedHeader) -> TrustedProxies {
        let nets: Vec<ProxyNet> = nets.iter().map(|n| n.parse().unwrap()).collect();
        TrustedProxies::new(&nets, header)
    }

    #[test]
    fn only_trusted_peers_are_believed() {
        let proxies = proxies(&["10.0.0.0/8", "::1"], ForwardedHeader::XForwardedFor);
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(proxies.client(ip("10.1.2.3"), &h), ip("203.0.113.9"));
        assert_eq!(proxies.client(ip("::1"), &h), ip("203.0.113.9"));
        assert_eq!(proxies.client(ip("198.51.100.1"), &h), ip("198.51.100.1"), "an untrusted peer is its own client");
        assert_eq!(proxies.client(ip("10.1.2.3"), &HeaderMap::new()), ip("10.1.2.3"), "no header: the proxy itself");
    }

    #[test]
    fn the_chain_is_walked_from_the_nearest_hop() {
        let proxies = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        // The client forged the first entry; the first untrusted hop from the right is real.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        let h = headers(&[("x-forwarded-for", "10.0.0.3"), ("x-forwarded-for", "10.0.0.2")]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &h), ip("10.0.0.3"), "all trusted: the farthest");
        let h = headers(&[("x-forwarded-for", "203.0.113.9, unknown, 10.0.0.2")]);
        assert_eq!(proxies.client(ip("10.0.0.1"), &h), ip("10.0.0.2"), "an unreadable hop stops the walk");
    }

    #[test]
    fn only_the_configured_header_counts_and_forwarded_forms_parse() {
        let h = headers(&[
            ("forwarded", r#"for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711""#),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        // A proxy that sets X-Forwarded-For passes on a Forwarded the client forged, and the
        // other way round: only the configured one is read.
        let xff = proxies(&["127.0.0.1"], ForwardedHeader::XForwardedFor);
        assert_eq!(xff.client(ip("127.0.0.1"), &h), ip("198.51.100.7"));
        let proxies = proxies(&["127.0.0.1"], ForwardedHeader::Forwarded);
        assert_eq!(proxies.client(ip("127.0.0.1"), &h), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=192.0.2.60:8080")]);
        assert_eq!(proxies.client(ip("127.0.0.1"), &h), ip("192.0.2.60"));
        assert_eq!(proxies.client(ip("::ffff:127.0.0.1"), &h), ip("192.0.2.60"), "mapped IPv4 peers match");
    }

    #[test]
    fn bad_entries_are_refused() {
        assert!("10.0.0.0/33".parse::<ProxyNet>().is_err());
        assert!("proxy.local".parse::<ProxyNet>().is_err());
        assert_eq!("10.0.0.1".parse::<ProxyNet>().unwrap().0.to_string(), "10.0.0.1/32");
    }
}
