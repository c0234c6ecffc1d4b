//! The outgoing HTTP client push uses (hyper, https through rustls with the `push-tls`
//! feature), and what one attempt's answer means for the retry loop.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// One request's limit, connect to last byte.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// The most of an answer's body read (error details; a token answer is far smaller).
const MAX_BODY: usize = 64 * 1024;
/// The longest `Retry-After` honoured; a longer one is cut to this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

#[cfg(feature = "push-tls")]
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(feature = "push-tls"))]
type Connector = HttpConnector;

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

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    pub fn new() -> Self {
        let mut http = HttpConnector::new();
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
            let response = self.0.request(request).await.map_err(|e| format!("request: {e}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
