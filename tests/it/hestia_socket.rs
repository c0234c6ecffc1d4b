//! Hestia's chat socket at `/socket.io/` (SPEC §6, CONTRACTS §3.4) on the real server with a
//! raw Socket.IO client: the token in `auth` or the query, the bad-token path, every client
//! event and what it delivers, room changes as members come and go, statuses, the socket's
//! bad-input list, account deletion, and the endpoint's CORS.

use serde_json::{Value, json};

use crate::support::chat::{
    ChatSocket, PATH, add_member, befriend, create_group, register, remove_member, status_becomes, status_of,
};
use crate::support::{Http, spawn_server};

const AUTH_FAILED: &str = "Authentication failed";

/// A CONNECT with no token, a bad one, and a bad one in the query: each is accepted, then told
/// `error {error:"Authentication failed"}`, then disconnected by the server.
#[tokio::test]
async fn a_missing_or_bad_token_gets_the_connection_then_error_then_disconnect() {
    let server = spawn_server().await;
    for (auth, query) in [("", ""), (r#"{"token":"not-a-jwt"}"#, ""), ("{}", "&token=bad"), (r#"{"token":7}"#, "")] {
        let mut socket = ChatSocket::connect_with(server.addr, auth, query).await;
        assert_eq!(socket.expect("error").await, json!({"error": AUTH_FAILED}), "{auth} {query}");
        assert_eq!(socket.ws.text().await, "41", "then the server's DISCONNECT");
    }
    // The server is fine.
    assert_eq!(server.http().get("/health").await.0, 200);
}

/// A good token in `auth` or in the query; statuses turn active at the first socket and
/// offline at the last; `do_not_disturb` is left alone.
#[tokio::test]
async fn statuses_follow_the_first_connect_and_the_last_disconnect() {
    let server = spawn_server().await;
    let http = server.http();
    let user = register(&http, "status").await;
    assert_eq!(status_of(&http, &user).await, "offline");
    let first = ChatSocket::of(server.addr, &user).await;
    let mut second = ChatSocket::connect_with(server.addr, "", &format!("&token={}", user.token)).await;
    // A round trip: the socket's events are handled once it has joined its user's room.
    assert!(second.ask("getDMHistory", json!({"otherId": user.id})).await["error"].is_string());
    drop(first);
    // Still one socket: a status change would be lost in the reads below if it came.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(status_of(&http, &user).await, "active");
    drop(second);
    status_becomes(&http, &user, "offline").await;

    let (status, body) = http
        .json(hyper::Method::PATCH, "/users/status", Some(json!({"status": "do_not_disturb"})), Some(&user.token))
        .await;
    assert_eq!(status, 200, "{body}");
    let mut socket = ChatSocket::connect_with(server.addr, &json!({"token": user.token}).to_string(), "").await;
    // A round trip through the socket's task: it has joined its rooms by the time it answers.
    assert!(socket.ask("getDMHistory", json!({"otherId": user.id + 1000})).await["error"].is_string());
    assert_eq!(status_of(&http, &user).await, "do_not_disturb");
    drop(socket);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(status_of(&http, &user).await, "do_not_disturb");
}

/// `sendDM` between friends: `newDM` to every socket of both, `dmNotification` to the
/// recipient's; ids as numbers or numeric strings; `getDMHistory` acks the pair's messages,
/// oldest first, with `before` and `limit`.
#[tokio::test]
async fn dms_reach_both_users_and_their_history() {
    let server = spawn_server().await;
    let http = server.http();
    let (amy, ben) = (register(&http, "amy").await, register(&http, "ben").await);
    befriend(&http, &amy, &ben).await;
    let mut a = ChatSocket::of(server.addr, &amy).await;
    let mut b1 = ChatSocket::of(server.addr, &ben).await;
    let mut b2 = ChatSocket::of(server.addr, &ben).await;

    a.emit("sendDM", json!({"toId": ben.id, "content": "  hi ben \u{1F44B} "})).await;
    let own = a.expect("newDM").await;
    assert_eq!(own["content"], "hi ben \u{1F44B}", "trimmed");
    assert_eq!((own["userId"].as_i64(), own["recipientId"].as_i64()), (Some(amy.id), Some(ben.id)));
    assert_eq!(own["username"], amy.username.as_str());
    let mut keys: Vec<&str> = own.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["content", "createdAt", "id", "recipientId", "userId", "username"]);
    for b in [&mut b1, &mut b2] {
        let mut got = [b.event().await, b.event().await];
        got.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(got[0].0, "dmNotification");
        assert_eq!(got[0].1["senderId"].as_i64(), Some(amy.id));
        assert_eq!(got[0].1["senderUsername"], amy.username.as_str());
        assert_eq!(got[0].1["id"], own["id"]);
        assert_eq!(got[1], ("newDM".to_owned(), own.clone()));
    }

    b1.emit("sendDM", json!({"toId": amy.id.to_string(), "content": "hello amy"})).await;
    assert_eq!(a.expect("newDM").await["content"], "hello amy");
    assert_eq!(a.expect("dmNotification").await["content"], "hello amy");

    let history = b2.ask("getDMHistory", json!({"otherId": amy.id})).await;
    let contents: Vec<&str> = history.as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents, ["hi ben \u{1F44B}", "hello amy"]);
    let newest = a.ask("getDMHistory", json!({"otherId": ben.id.to_string(), "limit": 1})).await;
    assert_eq!(newest.as_array().unwrap().len(), 1);
    assert_eq!(newest[0]["content"], "hello amy");
    let before = a.ask("getDMHistory", json!({"otherId": ben.id, "before": history[1]["id"]})).await;
    assert_eq!(before.as_array().unwrap().len(), 1);
    assert_eq!(before[0]["content"], contents[0]);
}

/// Groups: the creator's socket gets `groupCreated`; a member added while connected joins the
/// room before `memberAdded` (so it gets it); socket messages are `newGroupMessage`, REST ones
/// `newMessage`; `leaveGroup` mutes the group for that socket, `joinGroup` brings it back; a
/// removed member gets `memberRemoved` and nothing after; a socket opened later joins every
/// group of its user.
#[tokio::test]
async fn group_rooms_follow_members_and_the_events_reach_them() {
    let server = spawn_server().await;
    let http = server.http();
    let (owner, member, outsider) =
        (register(&http, "own").await, register(&http, "mem").await, register(&http, "out").await);
    let mut o = ChatSocket::of(server.addr, &owner).await;
    let mut m = ChatSocket::of(server.addr, &member).await;
    let mut x = ChatSocket::of(server.addr, &outsider).await;

    let group = create_group(&http, &owner, "room").await;
    assert_eq!(o.expect("groupCreated").await["id"].as_i64(), Some(group));
    add_member(&http, &owner, group, &member).await;
    assert_eq!(m.expect("memberAdded").await["userId"].as_i64(), Some(member.id));
    assert_eq!(o.expect("memberAdded").await["userId"].as_i64(), Some(member.id));

    m.emit("sendGroupMessage", json!({"groupId": group, "content": "hi all"})).await;
    let sent = m.expect("newGroupMessage").await;
    assert_eq!(o.expect("newGroupMessage").await, sent);
    assert_eq!(sent["groupId"].as_i64(), Some(group));
    assert_eq!(sent["userId"].as_i64(), Some(member.id));

    let (status, posted) = http
        .json(
            hyper::Method::POST,
            &format!("/groups/{group}/messages"),
            Some(json!({"content": "rest"})),
            Some(&owner.token),
        )
        .await;
    assert_eq!(status, 201, "{posted}");
    assert_eq!(m.expect("newMessage").await, posted);
    assert_eq!(o.expect("newMessage").await, posted);

    // Muted on one socket; a later socket of the same user still gets the group.
    m.emit("leaveGroup", json!({"groupId": group.to_string()})).await;
    let mut m2 = ChatSocket::of(server.addr, &member).await;
    o.emit("sendGroupMessage", json!({"groupId": group, "content": "muted"})).await;
    assert_eq!(o.expect("newGroupMessage").await["content"], "muted");
    assert_eq!(m2.expect("newGroupMessage").await["content"], "muted");
    m.emit("joinGroup", json!({"groupId": group})).await;
    // The socket's events are handled in order: once this is answered, joinGroup is done.
    let history = m.ask("getGroupHistory", json!({"groupId": group})).await;
    let contents: Vec<&str> = history.as_array().unwrap().iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(contents, ["hi all", "rest", "muted"]);
    o.emit("sendGroupMessage", json!({"groupId": group, "content": "back"})).await;
    assert_eq!(m.expect("newGroupMessage").await["content"], "back", "nothing from the muted time came first");
    assert_eq!(m2.expect("newGroupMessage").await["content"], "back");
    assert_eq!(o.expect("newGroupMessage").await["content"], "back");

    remove_member(&http, &owner, group, &member).await;
    for s in [&mut m, &mut m2, &mut o] {
        assert_eq!(s.expect("memberRemoved").await["userId"].as_i64(), Some(member.id));
    }
    o.emit("sendGroupMessage", json!({"groupId": group, "content": "after"})).await;
    assert_eq!(o.expect("newGroupMessage").await["content"], "after");
    m.expect_silence().await;
    m2.expect_silence().await;
    x.expect_silence().await;
    // A removed member's joinGroup is refused like any outsider's.
    m.emit("joinGroup", json!({"groupId": group})).await;
    assert_eq!(m.expect_error().await, "Group not found");
}

/// The socket's bad-input list: each gets `error {error}` (or an ack `{error}`), nothing is
/// stored or delivered, and the socket stays.
#[tokio::test]
async fn bad_input_gets_error_and_the_socket_stays() {
    let server = spawn_server().await;
    let http = server.http();
    let (me, friend, stranger) =
        (register(&http, "me").await, register(&http, "friend").await, register(&http, "stranger").await);
    befriend(&http, &me, &friend).await;
    let group = create_group(&http, &stranger, "theirs").await;
    let mut s = ChatSocket::of(server.addr, &me).await;
    let mut f = ChatSocket::of(server.addr, &friend).await;

    let bad_ids = [
        json!(1.5),
        json!(-1),
        json!(0),
        json!(9_007_199_254_740_993u64),
        json!("abc"),
        json!("1e3"),
        json!(null),
        json!([1]),
        json!({}),
    ];
    for id in &bad_ids {
        s.emit("sendDM", json!({"toId": id, "content": "x"})).await;
        s.expect_error().await;
        s.emit("sendGroupMessage", json!({"groupId": id, "content": "x"})).await;
        s.expect_error().await;
        s.emit("joinGroup", json!({"groupId": id})).await;
        s.expect_error().await;
        s.emit("leaveGroup", json!({"groupId": id})).await;
        s.expect_error().await;
        assert!(s.ask("getDMHistory", json!({"otherId": id})).await["error"].is_string(), "{id}");
        assert!(s.ask("getGroupHistory", json!({"groupId": id})).await["error"].is_string(), "{id}");
    }
    let long = "x".repeat(2049);
    for content in
        [json!(""), json!("   \n\t"), json!(long), json!("a\u{0}b"), json!(5), json!(null), json!({"$ne": 1})]
    {
        s.emit("sendDM", json!({"toId": friend.id, "content": content})).await;
        s.expect_error().await;
    }
    // Not friends, oneself, nobody; not a member.
    for to in [stranger.id, me.id, 999_999] {
        s.emit("sendDM", json!({"toId": to, "content": "hi"})).await;
        s.expect_error().await;
    }
    s.emit("sendGroupMessage", json!({"groupId": group, "content": "let me in"})).await;
    s.expect_error().await;
    s.emit("joinGroup", json!({"groupId": group})).await;
    assert_eq!(s.expect_error().await, "Group not found");
    assert!(s.ask("getGroupHistory", json!({"groupId": group})).await["error"].is_string());
    assert!(s.ask("getDMHistory", json!({"otherId": stranger.id})).await["error"].is_string());
    assert!(s.ask("getDMHistory", json!({"otherId": friend.id, "limit": -1})).await["error"].is_string());
    assert!(s.ask("getDMHistory", json!({"otherId": friend.id, "before": 0.5})).await["error"].is_string());
    // Payloads that are not objects, none at all, unknown events, a history without an ack.
    for raw in [
        r#"["sendDM"]"#,
        r#"["sendDM","hi"]"#,
        r#"["sendDM",[1,2]]"#,
        r#"["joinGroup",null]"#,
        r#"["nope",{}]"#,
        r#"["getDMHistory",{"otherId":1}]"#,
    ] {
        s.emit_raw(raw).await;
        s.expect_error().await;
    }
    assert!(s.ask("getGroupHistory", json!("not an object")).await["error"].is_string());
    // An event too large to be any chat event is refused as such, not as a queue too full.
    s.emit("sendDM", json!({"toId": friend.id, "content": "x".repeat(70_000)})).await;
    assert_eq!(s.expect_error().await, "Event too large: at most 64 KiB");

    // Nothing got through: the friend saw nothing, the DM history is empty, and the socket
    // still works.
    f.expect_silence().await;
    assert_eq!(s.ask("getDMHistory", json!({"otherId": friend.id})).await, json!([]));
    s.emit("sendDM", json!({"toId": friend.id, "content": "finally"})).await;
    assert_eq!(s.expect("newDM").await["content"], "finally");
    assert_eq!(f.expect("newDM").await["content"], "finally");
}

/// A deleted account's sockets are closed, its token opens no more sockets, and DMs to it are
/// refused.
#[tokio::test]
async fn a_deleted_users_sockets_close() {
    let server = spawn_server().await;
    let http = server.http();
    let (gone, friend) = (register(&http, "gone").await, register(&http, "stays").await);
    befriend(&http, &gone, &friend).await;
    let mut s = ChatSocket::of(server.addr, &gone).await;
    let mut f = ChatSocket::of(server.addr, &friend).await;
    let (status, _) = http.json(hyper::Method::DELETE, "/users/me", None, Some(&gone.token)).await;
    assert_eq!(status, 204);
    s.ws.expect_closed().await;
    f.emit("sendDM", json!({"toId": gone.id, "content": "there?"})).await;
    f.expect_error().await;
    let mut again = ChatSocket::connect_with(server.addr, &json!({"token": gone.token}).to_string(), "").await;
    assert_eq!(again.expect_error().await, AUTH_FAILED);
}

/// A new password voids the tokens the account's sockets were opened with: they close, on
/// whichever surface the password changed (here Push-Alt's profile route).
#[tokio::test]
async fn a_new_password_closes_the_users_sockets() {
    let server = spawn_server().await;
    let http = server.http();
    let (user, other) = (register(&http, "changes").await, register(&http, "keeps").await);
    let mut s = ChatSocket::of(server.addr, &user).await;
    let mut o = ChatSocket::of(server.addr, &other).await;
    let change = json!({"name": "changes", "email": "changes@example.com", "password": "a new password 1"});
    let (status, body) =
        http.json(hyper::Method::PUT, "/api/auth/profile/update", Some(change), Some(&user.token)).await;
    assert_eq!(status, 200, "{body}");
    s.ws.expect_closed().await;
    let mut again = ChatSocket::connect_with(server.addr, &json!({"token": user.token}).to_string(), "").await;
    assert_eq!(again.expect_error().await, AUTH_FAILED);
    o.emit("joinGroup", json!({"groupId": 999_999})).await;
    assert_eq!(o.expect_error().await, "Group not found", "another user's socket stays");
}

/// The chat socket's rate limit: past the burst, `error {error, retryAfter}`; the refused
/// message is neither stored nor delivered.
#[tokio::test]
async fn a_burst_past_the_message_limit_gets_retry_after() {
    let server = spawn_server().await;
    let http = server.http();
    let (a, b) = (register(&http, "burst").await, register(&http, "target").await);
    befriend(&http, &a, &b).await;
    let mut s = ChatSocket::of(server.addr, &a).await;
    // In rounds of 100, each answered before the next (one `newDM` or `error` per message),
    // so the socket's queue never fills: only the rate limit refuses.
    let (rounds, per_round) = (4, 100);
    let (mut delivered, mut refused) = (0, None::<Value>);
    for round in 0..rounds {
        for i in 0..per_round {
            s.emit("sendDM", json!({"toId": b.id, "content": format!("m{round}-{i}")})).await;
        }
        for _ in 0..per_round {
            let (name, data) = s.event().await;
            match name.as_str() {
                "newDM" => delivered += 1,
                "error" => {
                    refused.get_or_insert(data);
                }
                other => panic!("unexpected {other}"),
            }
        }
    }
    let total = rounds * per_round;
    let refused = refused.expect("some were refused");
    assert_eq!(refused["error"], "Too many requests, please try again later.");
    assert!(refused["retryAfter"].as_u64().is_some_and(|s| s >= 1), "{refused}");
    let history = s.ask("getDMHistory", json!({"otherId": b.id})).await;
    assert_eq!(history.as_array().unwrap().len(), delivered, "every delivered one is stored, no refused one");
    assert!(delivered >= 200 && delivered < total, "{delivered}");
}

/// Polling requests to the chat socket get CORS `*` without credentials, whatever the origin;
/// a preflight answers 204 naming `Authorization`.
#[tokio::test]
async fn the_chat_socket_answers_any_origin_with_cors_star() {
    let server = spawn_server().await;
    let http = Http::new(server.addr);
    let (status, headers, body) = http
        .request_full(
            hyper::Method::GET,
            &format!("{PATH}?EIO=4&transport=polling"),
            b"",
            &[("origin", "https://any.example")],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers.get("access-control-allow-origin").unwrap(), "*");
    assert!(headers.get("access-control-allow-credentials").is_none());
    let (status, headers, _) = http
        .request_full(
            hyper::Method::OPTIONS,
            &format!("{PATH}?EIO=4&transport=polling"),
            b"",
            &[("origin", "https://any.example"), ("access-control-request-headers", "authorization")],
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(headers.get("access-control-allow-origin").unwrap(), "*");
    let allowed = headers.get("access-control-allow-headers").unwrap().to_str().unwrap();
    assert!(allowed.contains("Authorization"), "{allowed}");
}
