//! Hostile input on Hestia's chat socket (SPEC §6): a payload `JSON.parse` accepts but
//! serde_json would not (a lone surrogate) reaches the handler and is refused there, keeping
//! the socket; every kind of bad token, in `auth` and in the query, gets the connection, then
//! `error {error:"Authentication failed"}`, then the server's DISCONNECT.

use base64::Engine;
use serde_json::{Value, json};

use crate::support::chat::{ChatSocket, befriend, register};
use crate::support::{TestServer, spawn_with};

const SECRET: &str = "a-test-secret-of-32-characters!!";

async fn server() -> TestServer {
    spawn_with(|c| c.auth.jwt_secret = Some(switchboard::config::Secret(SECRET.into()))).await
}

#[tokio::test]
async fn a_lone_surrogate_is_refused_by_the_handler_and_the_socket_stays() {
    let server = server().await;
    let http = server.http();
    let (alice, bob) = (register(&http, "alice").await, register(&http, "bob").await);
    befriend(&http, &alice, &bob).await;
    let mut socket = ChatSocket::of(server.addr, &alice).await;
    socket.emit_raw(&format!(r#"["sendDM",{{"toId":{},"content":"\ud800"}}]"#, bob.id)).await;
    assert_eq!(socket.expect_error().await, "Invalid DM parameters");
    socket.emit_raw(r#"["sendGroupMessage",{"groupId":1,"content":"a\udc00"}]"#).await;
    assert_eq!(socket.expect_error().await, "Invalid group message parameters");
    // The socket is still served: a pair is one character and is sent.
    socket.emit_raw(&format!(r#"["sendDM",{{"toId":{},"content":"\ud83d\ude00"}}]"#, bob.id)).await;
    assert_eq!(socket.expect("newDM").await["content"], json!("😀"));
    let history = socket.ask("getDMHistory", json!({"otherId": bob.id})).await;
    assert_eq!(history.as_array().map(Vec::len), Some(1), "nothing refused was stored: {history}");
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

#[tokio::test]
async fn bad_tokens_in_auth_or_query_get_error_then_disconnect() {
    let server = server().await;
    let http = server.http();
    let alice = register(&http, "alice").await;
    let (id, now) = (alice.id, crate::support::http::now());
    let sign = |alg: jsonwebtoken::Algorithm, claims: &Value, secret: &[u8]| {
        jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), claims, &jsonwebtoken::EncodingKey::from_secret(secret))
            .unwrap()
    };
    let claims = json!({"userId": id, "username": "alice", "iat": now, "exp": now + 3600});
    let good = sign(jsonwebtoken::Algorithm::HS256, &claims, SECRET.as_bytes());
    let bad = [
        ("alg none", format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&claims))),
        ("HS512", sign(jsonwebtoken::Algorithm::HS512, &claims, SECRET.as_bytes())),
        ("no exp", sign(jsonwebtoken::Algorithm::HS256, &json!({"userId": id, "iat": now}), SECRET.as_bytes())),
        (
            "expired",
            sign(
                jsonwebtoken::Algorithm::HS256,
                &json!({"userId": id, "iat": now - 7200, "exp": now - 3600}),
                SECRET.as_bytes(),
            ),
        ),
        ("forged", sign(jsonwebtoken::Algorithm::HS256, &claims, b"wrong-secret-wrong-secret")),
    ];
    for (what, token) in &bad {
        for (auth, query) in
            [(json!({"token": token}).to_string(), String::new()), ("{}".to_owned(), format!("&token={token}"))]
        {
            let mut socket = ChatSocket::connect_with(server.addr, &auth, &query).await;
            assert_eq!(
                socket.expect("error").await,
                json!({"error": "Authentication failed"}),
                "{what} {auth} {query}"
            );
            assert_eq!(socket.ws.text().await, "41", "{what}: then the server's DISCONNECT");
        }
    }
    // The server is healthy, and the good token (either way) is served.
    assert_eq!(http.get("/health").await.0, 200);
    for (auth, query) in
        [(json!({"token": good}).to_string(), String::new()), ("{}".to_owned(), format!("&token={good}"))]
    {
        let mut socket = ChatSocket::connect_with(server.addr, &auth, &query).await;
        let answer = socket.ask("getDMHistory", json!({"otherId": id})).await;
        assert!(answer["error"].is_string() || answer.is_array(), "{answer}");
        assert_ne!(answer["error"], json!("Authentication failed"));
    }
}

/// Push-Alt's `/ws` socket: the same payload reaches its handler, which answers in its own
/// format (a join it cannot read is refused as any bad join), instead of the transport
/// dropping the connection.
#[tokio::test]
async fn push_alt_answers_a_lone_surrogate_itself() {
    let server = server().await;
    let (mut ws, answer) = crate::support::sio::SioWs::connect_nsp(server.addr, "/ws", "/", "").await;
    assert!(answer.starts_with("40{"), "{answer}");
    ws.send(r#"42["join_channel",{"token":"\ud800","channel_name":"x"}]"#).await;
    assert_eq!(ws.text().await, r#"42["error",{"message":"Invalid token or channel"}]"#);
    assert_eq!(ws.text().await, "41", "then the surface's DISCONNECT of the namespace");
    assert_eq!(server.http().get("/health").await.0, 200);
}
