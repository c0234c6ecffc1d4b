//! The outgoing HTTP client push uses (hyper, https through rustls with the `push-tls`
//! feature), and what one attempt's answer means for the retry loop.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;

/// One request's limit, connect to last byte.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The most of an answer's body read (error details; a token answer is far smaller).
const MAX_BODY: usize = 64 * 1024;
/// The longest `Retry-After` honoured; a longer one is cut to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

#[cfg(feature = "push-tls")]
type Connector = hyper_rustls::HttpsConnector<HttpConnector<Resolver>>;
#[cfg(not(feature = "push-tls"))]
type Connector = HttpConnector<Resolver>;

/// The addresses a client may connect to.
#[derive(Clone, Copy, Debug)]
pub enum Reach {
    /// Any (FCM: its URLs are the operator's configuration).
    Any,
    /// Public addresses, and loopback ones when `loopback` (Web Push: an endpoint is a user's
    /// input, and a name that looked public at registration may resolve inside the network
    /// when it is called).
    Public { loopback: bool },
}

impl Reach {
    fn allows(self, ip: IpAddr) -> bool {
        match self {
            Reach::Any => true,
            Reach::Public { loopback } => {
                let is_loopback = match ip {
                    IpAddr::V4(v4) => v4.is_loopback(),
                    IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
                };
                if is_loopback { loopback } else { !internal(ip) }
            }
        }
    }
}

/// Private, shared (carrier NAT), link-local, unspecified, multicast and reserved ranges
/// (loopback apart); IPv6 also by the IPv4 address it maps or translates (NAT64).
pub(super) fn internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || a >= 240
                || (a == 100 && (b & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded = v6.to_ipv4_mapped().or_else(|| {
                (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]).then(|| std::net::Ipv4Addr::from(v6.to_bits() as u32))
            });
            v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || embedded.is_some_and(|v4| internal(IpAddr::V4(v4)) || v4.is_loopback())
        }
    }
}

/// Resolves a name through the system (tokio's `lookup_host`) and keeps the addresses its
/// [`Reach`] allows; none left is an error. The check happens at every connection, so a name
/// re-pointed after it was registered (DNS rebinding) is caught too. Address literals never come
/// here: the endpoint check at registration and before each send covers them.
#[derive(Clone, Debug)]
pub struct Resolver(Reach);

impl tower::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let reach = self.0;
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = addrs.filter(|addr| reach.allows(addr.ip())).collect();
            if allowed.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "the name resolves only to internal addresses",
                ));
            }
            Ok(allowed.into_iter())
        })
    }
}

/// What a push service made of one attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// The device is gone (FCM `UNREGISTERED`, Web Push 404/410): forget it.
    Gone,
    /// Worth another try (429, 5xx, network), after the service's `Retry-After` if it said.
    Retry(Option<Duration>),
    /// Not worth another try; why, for the log.
    Failed(String),
}

/// An answer: status, `Retry-After`, and at most [`MAX_BODY`] bytes of body.
pub struct Reply {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub body: Bytes,
}

impl Reply {
    /// The usual reading of a status: 2xx delivered, 429/5xx retried, others failed.
    pub fn outcome(&self) -> Outcome {
        match self.status.as_u16() {
            200..=299 => Outcome::Delivered,
            429 | 500..=599 => Outcome::Retry(self.retry_after),
            status => Outcome::Failed(format!(
                "status {status}: {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            )),
        }
    }
}

/// Cheap to clone: hyper's client shares its pool.
#[derive(Clone)]
pub struct HttpClient(Client<Connector, Full<Bytes>>);

impl HttpClient {
    /// A client that connects to the addresses `reach` allows.
    pub fn new(reach: Reach) -> Self {
        let mut http = HttpConnector::new_with_resolver(Resolver(reach));
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        #[cfg(feature = "push-tls")]
        let connector = {
            http.enforce_http(false);
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_webpki_roots()
                .https_or_http()
                .enable_http1()
                .wrap_connector(http)
        };
        #[cfg(not(feature = "push-tls"))]
        let connector = http;
        Self(Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(60)).build(connector))
    }

    /// Sends `request`; a network error or timeout is `Err` (the caller retries it).
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<Reply, String> {
        if request.uri().scheme_str() == Some("https") && !cfg!(feature = "push-tls") {
            return Err("https needs a build with the push-tls feature".into());
        }
        let exchange = async {
            let response = self.0.request(request).await.map_err(|e| format!("request: {}", chain(&e)))?;
            let status = response.status();
            let retry_after = response
                .headers()
                .get(hyper::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
            let body =
                Limited::new(response.into_body(), MAX_BODY).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            Ok(Reply { status, retry_after, body })
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange).await.map_err(|_| "timed out".to_owned())?
    }
}

/// An error and its causes, one line: hyper's own says only "client error (Connect)".
fn chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn public_reach_refuses_names_that_resolve_inside() {
        use tower::ServiceExt;
        let resolve = |reach| Resolver(reach).oneshot("localhost".parse::<Name>().unwrap());
        let err = resolve(Reach::Public { loopback: false }).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(resolve(Reach::Public { loopback: true }).await.unwrap().all(|a| a.ip().is_loopback()));
        assert!(resolve(Reach::Any).await.is_ok());
    }

    /// The client connects through the resolver: with loopback refused, a request to a name for
    /// a local listener fails before any connection; with it allowed, it is answered.
    #[tokio::test]
    async fn the_client_connects_only_where_its_reach_allows() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://localhost:{}/push", listener.local_addr().unwrap().port());
        let accepted = tokio::spawn(async move {
            let mut n = 0;
            while let Ok((mut conn, _)) = listener.accept().await {
                n += 1;
                let mut buf = [0; 1024];
                let _ = conn.read(&mut buf).await;
                let _ = conn.write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n").await;
                if n == 1 {
                    return n;
                }
            }
            n
        });
        let request = || Request::post(url.as_str()).body(Full::new(Bytes::new())).unwrap();
        let refused = HttpClient::new(Reach::Public { loopback: false }).send(request()).await;
        let why = refused.err().unwrap_or_default();
        assert!(why.contains("resolves only to internal addresses"), "refused before connecting: {why}");
        assert!(!accepted.is_finished());
        let reply = HttpClient::new(Reach::Public { loopback: true }).send(request()).await.unwrap();
        assert_eq!(reply.status, StatusCode::CREATED);
        assert_eq!(accepted.await.unwrap(), 1, "one connection: the allowed one");
    }

    #[test]
    fn public_reach_is_the_internet() {
        let public = Reach::Public { loopback: false };
        for ip in [
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "127.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "ff02::1",
            "64:ff9b::10.0.0.1",
            "64:ff9b::127.0.0.1",
        ] {
            assert!(!public.allows(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "142.250.1.1", "100.128.0.1", "2a00:1450::1", "64:ff9b::8.8.8.8"] {
            assert!(public.allows(ip.parse().unwrap()), "{ip}");
        }
        assert!(Reach::Public { loopback: true }.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!Reach::Public { loopback: true }.allows("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn statuses_map_to_outcomes() {
        let reply = |status: u16, retry_after: Option<u64>| Reply {
            status: StatusCode::from_u16(status).unwrap(),
            retry_after: retry_after.map(Duration::from_secs),
            body: Bytes::from_static(b"why"),
        };
        assert_eq!(reply(201, None).outcome(), Outcome::Delivered);
        assert_eq!(reply(429, Some(3)).outcome(), Outcome::Retry(Some(Duration::from_secs(3))));
        assert_eq!(reply(503, None).outcome(), Outcome::Retry(None));
        assert_eq!(reply(400, None).outcome(), Outcome::Failed("status 400: why".into()));
    }
}
