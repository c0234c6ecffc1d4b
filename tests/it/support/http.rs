//! An HTTP client for tests, with Pusher request signing.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

#[derive(Clone)]
pub struct Http {
    addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

impl Http {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, client: Client::builder(TokioExecutor::new()).build_http() }
    }

    /// Any request; returns status and the body parsed as JSON (or a JSON string).
    pub async fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let (status, _, value) = self.request_full(method, path_and_query, body, headers).await;
        (status, value)
    }

    /// Like [`Http::request`], with the response headers.
    pub async fn request_full(
        &self,
        method: Method,
        path_and_query: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> (u16, hyper::HeaderMap, Value) {
        let mut req = Request::builder().method(method).uri(format!("http://{}{}", self.addr, path_and_query));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if !body.is_empty() {
            req = req.header("content-type", "application/json");
        }
        let res = self.client.request(req.body(Full::new(Bytes::copy_from_slice(body))).unwrap()).await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, headers, value)
    }

    /// Any request as given (no content type added), answered with status, headers and the raw
    /// body bytes.
    pub async fn raw(
        &self,
        method: Method,
        path_and_query: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (u16, hyper::HeaderMap, Bytes) {
        let mut req = Request::builder().method(method).uri(format!("http://{}{}", self.addr, path_and_query));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = self.client.request(req.body(Full::new(Bytes::from(body))).unwrap()).await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        (status, headers, bytes)
    }

    /// A JSON request with an optional bearer token.
    pub async fn json(&self, method: Method, path: &str, body: Option<Value>, token: Option<&str>) -> (u16, Value) {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth.as_deref().map(|a| vec![("authorization", a)]).unwrap_or_default();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.request(method, path, body.as_bytes(), &headers).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.request(Method::GET, path, b"", &[]).await
    }

    /// A request signed for `key`/`secret` at `timestamp`.
    #[allow(clippy::too_many_arguments)]
    pub async fn signed_as(
        &self,
        key: &str,
        secret: &str,
        method: Method,
        path: &str,
        body: &str,
        extra: &[(&str, &str)],
        timestamp: i64,
    ) -> (u16, Value) {
        let q = switchboard::auth::pusher::sign_query(
            key,
            secret,
            method.as_str(),
            path,
            body.as_bytes(),
            extra,
            timestamp,
        );
        self.request(method, &format!("{path}?{q}"), body.as_bytes(), &[]).await
    }

    /// A request signed for the default app.
    pub async fn signed(&self, method: Method, path: &str, body: &str, extra: &[(&str, &str)]) -> (u16, Value) {
        self.signed_as(super::APP_KEY, super::APP_SECRET, method, path, body, extra, now()).await
    }

    /// `POST /apps/app-1/events`.
    pub async fn trigger(&self, body: Value) -> (u16, Value) {
        self.signed(Method::POST, &format!("/apps/{}/events", super::APP_ID), &body.to_string(), &[]).await
    }
}
