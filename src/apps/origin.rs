//! Origin matching (SPEC §1), the one implementation every surface uses.
//!
//! An entry is `[scheme://]host[:port]`, host possibly `*.domain`, compared case-insensitively.
//! No scheme matches http and https; a port must match, and an entry without one matches only
//! origins without one. `*.example.com` matches `example.com` and names ending in
//! `.example.com`, never `evilexample.com`.

use std::fmt;

/// One allowed-origin entry, parsed.
#[derive(Clone, PartialEq, Eq)]
pub struct OriginPattern {
    scheme: Option<String>,
    host: Host,
    port: Option<u16>,
    raw: String,
}

#[derive(Clone, PartialEq, Eq)]
enum Host {
    Any,
    Exact(String),
    /// `*.domain`: the domain itself and its subdomains.
    Subdomains(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid origin {0:?}: expected [scheme://]host[:port]")]
pub struct OriginError(pub String);

impl OriginPattern {
    /// Parses an entry such as `example.com`, `https://*.example.com` or `localhost:5173`.
    pub fn parse(entry: &str) -> Result<Self, OriginError> {
        let raw = entry.trim().to_ascii_lowercase();
        let bad = || OriginError(entry.to_owned());
        if raw == "*" {
            return Ok(Self { scheme: None, host: Host::Any, port: None, raw });
        }
        let (scheme, rest) = match raw.split_once("://") {
            Some((s, rest)) => {
                if s.is_empty() || !s.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
                    return Err(bad());
                }
                (Some(s.to_owned()), rest)
            }
            None => (None, raw.as_str()),
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = split_port(rest).ok_or_else(bad)?;
        if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
            return Err(bad());
        }
        let host = match host.strip_prefix("*.") {
            Some(domain) if !domain.is_empty() && !domain.contains('*') => Host::Subdomains(domain.to_owned()),
            Some(_) => return Err(bad()),
            None if host.contains('*') => return Err(bad()),
            None => Host::Exact(host.to_owned()),
        };
        Ok(Self { scheme, host, port, raw })
    }

    /// Whether an `Origin` header value matches this entry.
    pub fn matches(&self, origin: &str) -> bool {
        let Some(origin) = ParsedOrigin::parse(origin) else {
            return false;
        };
        if self.host == Host::Any {
            return true;
        }
        let scheme_ok = match &self.scheme {
            Some(s) => *s == origin.scheme,
            None => origin.scheme == "http" || origin.scheme == "https",
        };
        let host_ok = match &self.host {
            Host::Any => true,
            Host::Exact(h) => *h == origin.host,
            Host::Subdomains(d) => {
                origin.host == *d
                    || (origin.host.len() > d.len() + 1 && origin.host.ends_with(d.as_str()) && {
                        let cut = origin.host.len() - d.len() - 1;
                        origin.host.as_bytes()[cut] == b'.'
                    })
            }
        };
        scheme_ok && host_ok && self.port == origin.port
    }

    /// Whether this is `*`, which matches every origin.
    pub fn is_any(&self) -> bool {
        self.host == Host::Any
    }

    /// The entry as written (lowercased), e.g. for Notif's `domain_name`.
    pub fn as_str(&self) -> &str {
        &self.raw
    }
}

impl fmt::Debug for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Whether `origin` is allowed by `list` (an empty list allows any, a missing origin included).
pub fn allowed(list: &[OriginPattern], origin: Option<&str>) -> bool {
    if list.is_empty() {
        return true;
    }
    origin.is_some_and(|o| list.iter().any(|p| p.matches(o)))
}

struct ParsedOrigin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl ParsedOrigin {
    fn parse(origin: &str) -> Option<Self> {
        let lower = origin.trim().to_ascii_lowercase();
        let (scheme, rest) = lower.split_once("://")?;
        // An Origin carries no path, but a Referer-like value might: ignore what follows.
        let authority = rest.split(['/', '?', '#']).next()?;
        if authority.contains('@') {
            return None;
        }
        let (host, port) = split_port(authority)?;
        if host.is_empty() {
            return None;
        }
        Some(Self { scheme: scheme.to_owned(), host: host.to_owned(), port })
    }
}

/// `host[:port]`, with `[v6]` hosts; `None` for an unparsable port.
fn split_port(s: &str) -> Option<(&str, Option<u16>)> {
    if s.starts_with('[') {
        let end = s.find(']')?;
        let (host, rest) = s.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(p) => Some((host, Some(p.parse().ok()?))),
            None if rest.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match s.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((s, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(entry: &str, origin: &str) -> bool {
        OriginPattern::parse(entry).unwrap().matches(origin)
    }

    #[test]
    fn spoofs_and_rules() {
        let table = [
            ("example.com", "https://example.com", true),
            ("example.com", "http://example.com", true),
            ("example.com", "HTTPS://EXAMPLE.COM", true),
            ("Example.COM", "https://example.com", true),
            ("example.com", "https://evilexample.com", false),
            ("example.com", "https://example.com.evil.com", false),
            ("example.com", "https://sub.example.com", false),
            ("example.com", "https://example.com:8443", false),
            ("example.com", "ftp://example.com", false),
            ("example.com:8443", "https://example.com:8443", true),
            ("example.com:8443", "https://example.com", false),
            ("example.com:8443", "https://example.com:8444", false),
            ("https://example.com", "http://example.com", false),
            ("https://example.com", "https://example.com", true),
            ("*.example.com", "https://example.com", true),
            ("*.example.com", "https://a.example.com", true),
            ("*.example.com", "https://a.b.example.com", true),
            ("*.example.com", "https://evilexample.com", false),
            ("*.example.com", "https://example.com.evil.com", false),
            ("*.example.com", "https://xexample.com", false),
            ("*.example.com", "https://a.example.com:81", false),
            ("localhost:5173", "http://localhost:5173", true),
            ("*", "https://anything.test:99", true),
            ("example.com", "null", false),
            ("example.com", "https://user@example.com", false),
        ];
        for (entry, origin, want) in table {
            assert_eq!(m(entry, origin), want, "{entry} vs {origin}");
        }
    }

    #[test]
    fn bad_entries() {
        for bad in ["", "https://", "*.", "a*.example.com", "example.com:http", "exa mple.com"] {
            assert!(OriginPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn empty_list_allows_all() {
        assert!(allowed(&[], None));
        let list = [OriginPattern::parse("example.com").unwrap()];
        assert!(!allowed(&list, None));
        assert!(allowed(&list, Some("https://example.com")));
    }
}
