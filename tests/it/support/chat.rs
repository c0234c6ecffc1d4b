//! Hestia chat clients for tests: users made over REST (register, friends, groups) and a raw
//! Socket.IO client on `/socket.io/` that speaks the chat events.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::Method;
use serde_json::{Value, json};

use super::Http;
use super::sio::{Got, SioWs};

/// The chat socket's path.
pub const PATH: &str = "/socket.io/";

/// A registered user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub token: String,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Registers a user named `name` plus a number unique in this test binary.
pub async fn register(http: &Http, name: &str) -> User {
    let username = format!("{name}{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let (status, body) = http
        .json(Method::POST, "/auth/register", Some(json!({"username": username, "password": "correct horse"})), None)
        .await;
    assert_eq!(status, 201, "{body}");
    User {
        id: body["user"]["id"].as_i64().expect("a numeric id"),
        username,
        token: body["token"].as_str().unwrap().into(),
    }
}

/// Makes `a` and `b` friends (a asks, b accepts).
pub async fn befriend(http: &Http, a: &User, b: &User) {
    let (status, body) = http.json(Method::POST, &format!("/friends/request/{}", b.id), None, Some(&a.token)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = http.json(Method::POST, &format!("/friends/accept/{}", a.id), None, Some(&b.token)).await;
    assert_eq!(status, 200, "{body}");
}

/// Creates a group owned by `owner`; its id.
pub async fn create_group(http: &Http, owner: &User, name: &str) -> i64 {
    let (status, body) = http.json(Method::POST, "/groups", Some(json!({"name": name})), Some(&owner.token)).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().unwrap()
}

/// `admin` adds `user` to `group` as a MEMBER.
pub async fn add_member(http: &Http, admin: &User, group: i64, user: &User) {
    let path = format!("/groups/{group}/members/{}", user.id);
    let (status, body) = http.json(Method::POST, &path, Some(json!({})), Some(&admin.token)).await;
    assert_eq!(status, 201, "{body}");
}

/// `admin` removes `user` from `group`.
pub async fn remove_member(http: &Http, admin: &User, group: i64, user: &User) {
    let path = format!("/groups/{group}/members/{}", user.id);
    let (status, body) = http.json(Method::DELETE, &path, None, Some(&admin.token)).await;
    assert_eq!(status, 200, "{body}");
}

/// The user's `status` as `GET /users/by-id` shows it.
pub async fn status_of(http: &Http, user: &User) -> String {
    let (status, body) = http.get(&format!("/users/by-id/{}", user.id)).await;
    assert_eq!(status, 200, "{body}");
    body["status"].as_str().unwrap_or_default().to_owned()
}

/// Waits (at most 5 s) until the user's status is `want`.
pub async fn status_becomes(http: &Http, user: &User, want: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = status_of(http, user).await;
        if now == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "status of {} stayed {now:?}, not {want:?}", user.username);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A chat socket: a raw Socket.IO client in the main namespace.
pub struct ChatSocket {
    pub ws: SioWs,
    next_ack: u64,
}

impl ChatSocket {
    /// Connects with `auth` (JSON text, may be empty) and extra query (`&token=…`); returns the
    /// socket once its CONNECT is answered (the answer is checked to be an accept).
    pub async fn connect_with(addr: SocketAddr, auth: &str, query: &str) -> Self {
        let mut ws = SioWs::connect_with_query(addr, PATH, query).await;
        let answer = ws.join("/", auth).await;
        assert!(answer.starts_with("40{\"sid\":"), "CONNECT not accepted: {answer}");
        Self { ws, next_ack: 0 }
    }

    /// A socket of `user`, its token in `auth`, with its rooms joined: its events are handled
    /// only after that, so an answered one shows it (the user's status may have been `active`
    /// already, from another socket); and the status is `active`.
    pub async fn of(addr: SocketAddr, user: &User) -> Self {
        let mut socket = Self::connect_with(addr, &json!({"token": user.token}).to_string(), "").await;
        let answer = socket.ask("getDMHistory", json!({"otherId": user.id})).await;
        assert!(answer["error"].is_string(), "{answer}");
        status_becomes(&Http::new(addr), user, "active").await;
        socket
    }

    /// Emits `event` with one JSON argument.
    pub async fn emit(&mut self, event: &str, payload: Value) {
        self.ws.send(&format!("42{}", json!([event, payload]))).await;
    }

    /// Emits a raw Socket.IO packet body after `42` (`["sendDM"]`, `["x",1,2]`).
    pub async fn emit_raw(&mut self, args: &str) {
        self.ws.send(&format!("42{args}")).await;
    }

    /// Emits `event` with an ack and returns the ack's first argument (other packets before it
    /// are dropped).
    pub async fn ask(&mut self, event: &str, payload: Value) -> Value {
        let id = self.next_ack;
        self.next_ack += 1;
        self.ws.send(&format!("42{id}{}", json!([event, payload]))).await;
        let prefix = format!("43{id}");
        loop {
            let text = self.ws.text().await;
            if let Some(rest) = text.strip_prefix(&prefix) {
                let args: Value = serde_json::from_str(rest).unwrap();
                return args[0].clone();
            }
        }
    }

    /// The next event: (name, first argument).
    pub async fn event(&mut self) -> (String, Value) {
        match self.ws.recv().await {
            Got::Text(text) => {
                let rest = text.strip_prefix("42").unwrap_or_else(|| panic!("expected an event, got {text}"));
                let args: Value = serde_json::from_str(rest).unwrap();
                (args[0].as_str().unwrap().to_owned(), args[1].clone())
            }
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// The next event, which must be `name`; its argument.
    pub async fn expect(&mut self, name: &str) -> Value {
        let (got, data) = self.event().await;
        assert_eq!(got, name, "{data}");
        data
    }

    /// The next event must be `error`; its `error` text.
    pub async fn expect_error(&mut self) -> String {
        let data = self.expect("error").await;
        data["error"].as_str().unwrap_or_else(|| panic!("error without text: {data}")).to_owned()
    }

    /// Nothing arrives for a while (a marker round trip is better where one exists).
    pub async fn expect_silence(&mut self) {
        self.ws.expect_silence(Duration::from_millis(150)).await;
    }
}
