//! Hestia's chat socket (SPEC §6, CONTRACTS §3.4): Socket.IO's main namespace at `/socket.io/`.
//!
//! Every CONNECT is accepted; the token (`auth.token`, else `query.token`, never logged) is
//! checked after, and a missing or bad one gets `error {error:"Authentication failed"}` and the
//! server's disconnect, as Hestia did. A good one puts the socket in its user's room and the
//! rooms of all the user's groups (core channels of [`chat::APP`], see `chat::rooms`), so the
//! chat service's publishes reach it as `42["newDM",{…}]`; the service also adds and removes
//! the sockets of a user added to or removed from a group ([`crate::core::Realtime::attach`]).
//!
//! One task per socket reads its events in order, so a burst of `sendDM`s is stored in the
//! order it was sent; events that arrive while the token is being checked wait for it. Every
//! chat rule is the chat service's: this layer parses, calls [`Chat`] and answers.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::Request;
use axum::http::header;
use axum::response::Response;
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::accounts::Accounts;
use crate::chat::{self, Chat, ChatError, Page, Via, rooms};
use crate::core::ChannelRules;
use crate::transport::engineio::Endpoint;
use crate::transport::socketio::{AckSender, Args, Message, Namespace, Socket, SocketIo};

/// What a socket is told when its token is missing or bad (Hestia's words).
pub const AUTH_FAILED: &str = "Authentication failed";
/// Events one socket may have waiting for its task; past it, `error` (the socket stays). The
/// chat service's own rate limit (a burst of 200 messages) fits.
const MAX_QUEUED: usize = 256;
/// Bytes of events one socket may have waiting (a packet may be up to 1 MB, so a count alone
/// would let one socket hold 256 MB): far above any burst of valid chat events.
const MAX_QUEUED_BYTES: usize = 256 * 1024;
/// The largest event worth queueing: a message's 2,048 characters and its ids fit many times
/// over. A larger one is refused as such (waiting for answers would not help it).
const MAX_EVENT_BYTES: usize = 64 * 1024;
/// Rooms one socket may be in: its user's and its groups'. A user in more groups gets the
/// first ones live (history still works); see docs/migrating-from-hestia.md.
pub const MAX_ROOMS: usize = 1001;
/// The limits of a chat socket's core connection.
pub const RULES: ChannelRules = ChannelRules { max_members: 0, max_channels: MAX_ROOMS, subscription_count: false };
/// What a malformed id gets (Hestia's words).
const BAD_USER: &str = "Invalid user ID";
const BAD_GROUP: &str = "Invalid group ID";
/// The longest event name quoted back in an "unknown event" error.
const MAX_QUOTED_NAME: usize = 64;

/// What the chat socket needs from the server.
#[derive(Clone)]
pub struct Deps {
    pub accounts: Arc<Accounts>,
    pub chat: Chat,
    /// Ends token checks under way when the server shuts down.
    pub shutdown: CancellationToken,
}

/// One socket's queue to its task (taken, so closed, when the socket leaves), and the bytes
/// waiting in it.
#[derive(Default)]
struct Queue(Mutex<Option<mpsc::Sender<Message>>>, Arc<AtomicUsize>);

/// Counts `size` more bytes waiting, unless that would pass [`MAX_QUEUED_BYTES`].
fn reserve(queued: &AtomicUsize, size: usize) -> bool {
    if queued.fetch_add(size, Ordering::AcqRel).saturating_add(size) > MAX_QUEUED_BYTES {
        queued.fetch_sub(size, Ordering::AcqRel);
        return false;
    }
    true
}

/// What a queued event holds on to.
fn size_of(message: &Message) -> usize {
    message.name.len() + message.args.text().len() + message.args.attachments().iter().map(|a| a.len()).sum::<usize>()
}

/// The chat namespace, served in the core app [`chat::APP`] under [`RULES`].
pub fn setup(deps: Deps) -> SocketIo {
    let ns = Namespace::new()
        .on_connect(move |socket, auth| {
            connected(&deps, socket, auth);
            Ok(())
        })
        .on_any(queue)
        .on_disconnect(|socket, _| {
            if let Some(queue) = socket.data::<Queue>() {
                queue.0.lock().take();
            }
        });
    SocketIo::new().namespace("/", ns).app(chat::APP, RULES, 0)
}

/// The token a client sent: `auth.token`, else the handshake's `token` query parameter.
fn token_of(socket: &Socket, auth: &str) -> Option<String> {
    let from_auth = serde_json::from_str::<Value>(auth)
        .ok()
        .and_then(|a| a.get("token").and_then(Value::as_str).map(str::to_owned));
    from_auth.or_else(|| socket.handshake().query("token").map(str::to_owned)).filter(|t| !t.is_empty())
}

/// A new socket: its queue and its task, which checks the token first.
fn connected(deps: &Deps, socket: &Socket, auth: &str) {
    let Some(token) = token_of(socket, auth) else {
        refuse(socket);
        return;
    };
    let (tx, rx) = mpsc::channel(MAX_QUEUED);
    let queue = Queue::default();
    *queue.0.lock() = Some(tx);
    let queued = queue.1.clone();
    socket.set_data(queue);
    tokio::spawn(run(deps.clone(), socket.clone(), token, (rx, queued)));
}

/// `error {error:"Authentication failed"}`, then the server's disconnect (and an audit line).
fn refuse(socket: &Socket) {
    let client = socket.handshake().client.unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    crate::audit::refused(crate::audit::Refusal::BadToken, client, "chat socket", &"missing, invalid or expired");
    emit_error(socket, AUTH_FAILED);
    socket.disconnect();
}

/// Hands a client event to its socket's task.
fn queue(socket: &Socket, message: Message) {
    let Some(queue) = socket.data::<Queue>() else { return };
    let size = size_of(&message);
    if size > MAX_EVENT_BYTES {
        emit_error(socket, "Event too large: at most 64 KiB");
        return;
    }
    if !reserve(&queue.1, size) {
        emit_error(socket, "Too many events at once: wait for the answers");
        return;
    }
    let full = match &*queue.0.lock() {
        Some(tx) => tx.try_send(message).is_err(),
        None => false,
    };
    if full {
        queue.1.fetch_sub(size, Ordering::AcqRel);
    }
    if full {
        emit_error(socket, "Too many events at once: wait for the answers");
    }
}

/// The socket's task: authenticates, joins the rooms, then serves the events in order until
/// the socket leaves (its queue closes), and marks the user offline if it was the last.
async fn run(deps: Deps, socket: Socket, token: String, queue: (mpsc::Receiver<Message>, Arc<AtomicUsize>)) {
    let (mut rx, queued) = queue;
    let user = tokio::select! {
        user = authenticate(&deps, &token) => user,
        () = deps.shutdown.cancelled() => return,
    };
    drop(token);
    let Some(me) = user else {
        refuse(&socket);
        return;
    };
    if !join_rooms(&deps.chat, &socket, me).await {
        return;
    }
    if let Err(e) = deps.chat.socket_connected(me).await {
        tracing::warn!(error = %e, "chat: could not mark a user active");
    }
    // Until the socket leaves (a shutdown closes it too); what it sent before is still served.
    while let Some(message) = rx.recv().await {
        queued.fetch_sub(size_of(&message), Ordering::AcqRel);
        handle(&deps.chat, &socket, me, message).await;
    }
    if let Err(e) = deps.chat.socket_disconnected(me).await {
        tracing::warn!(error = %e, "chat: could not mark a user offline");
    }
}

/// The user a token names, if it is valid.
async fn authenticate(deps: &Deps, token: &str) -> Option<i64> {
    match deps.accounts.authenticate(token).await {
        Ok(account) => Some(account.id),
        Err(crate::accounts::AccountError::Store(e)) => {
            tracing::warn!(error = %e, "chat: token check failed");
            None
        }
        Err(_) => None,
    }
}

/// Joins the user's room, then its groups' (in this order: a group the user is added to
/// meanwhile reaches the socket either through the user's room or through the list). False
/// when the socket is gone.
async fn join_rooms(chat: &Chat, socket: &Socket, me: i64) -> bool {
    if let Err(e) = socket.join(&rooms::user(me)) {
        tracing::debug!(error = %e, "chat socket left before it joined");
        return false;
    }
    match chat.group_ids(me).await {
        Ok(groups) => {
            for group in groups {
                if let Err(e) = socket.join(&rooms::group(group)) {
                    tracing::debug!(error = %e, group, "chat socket not put in a group's room");
                    break;
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "chat: could not list a user's groups");
            emit_error(socket, "Failed to join groups");
        }
    }
    true
}

/// One client event.
async fn handle(chat: &Chat, socket: &Socket, me: i64, message: Message) {
    let Message { name, args, ack } = message;
    match name.as_str() {
        "joinGroup" => join_group(chat, socket, me, &args).await,
        "leaveGroup" => leave_group(socket, &args),
        "sendDM" => send_dm(chat, socket, me, &args).await,
        "sendGroupMessage" => send_group_message(chat, socket, me, &args).await,
        "getDMHistory" => dm_history(chat, socket, me, &args, ack).await,
        "getGroupHistory" => group_history(chat, socket, me, &args, ack).await,
        other => {
            let quoted: String = other.chars().take(MAX_QUOTED_NAME).collect();
            emit_error(socket, &format!("Unknown event: {quoted}"));
        }
    }
}

/// The first argument as an object, or `None` (missing, not an object, binary).
fn payload(args: &Args) -> Option<serde_json::Map<String, Value>> {
    if !args.attachments().is_empty() {
        return None;
    }
    match args.first::<Value>() {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// An id member of a payload (integers or numeric strings, 1..=2^53).
fn id_in(map: &serde_json::Map<String, Value>, key: &str, what: &'static str) -> Result<i64, ChatError> {
    Chat::id_from_json(map.get(key).unwrap_or(&Value::Null), what)
}

/// `joinGroup {groupId}`: (re)joins the group's room, members only.
async fn join_group(chat: &Chat, socket: &Socket, me: i64, args: &Args) {
    let Some(map) = payload(args) else {
        emit_error(socket, BAD_GROUP);
        return;
    };
    let group = match id_in(&map, "groupId", BAD_GROUP) {
        Ok(group) => group,
        Err(e) => return emit_chat_error(socket, &e, "Failed to join group"),
    };
    match chat.is_member(me, group).await {
        Ok(true) => {
            if let Err(e) = socket.join(&rooms::group(group)) {
                tracing::debug!(error = %e, group, "joinGroup not joined");
                emit_error(socket, "Failed to join group");
            }
        }
        Ok(false) => emit_error(socket, "Group not found"),
        Err(e) => emit_chat_error(socket, &e, "Failed to join group"),
    }
}

/// `leaveGroup {groupId}`: mutes the group for this socket (until it joins again or the
/// user is added anew).
fn leave_group(socket: &Socket, args: &Args) {
    let Some(map) = payload(args) else {
        emit_error(socket, BAD_GROUP);
        return;
    };
    match id_in(&map, "groupId", BAD_GROUP) {
        Ok(group) => {
            socket.leave(&rooms::group(group));
        }
        Err(e) => emit_chat_error(socket, &e, "Failed to leave group"),
    }
}

/// The `content` member: a string, else `None`.
fn content_in(map: &serde_json::Map<String, Value>) -> Option<&str> {
    map.get("content").and_then(Value::as_str)
}

/// `sendDM {toId, content}`: the service stores it, then tells both users (`newDM`) and the
/// recipient (`dmNotification`).
async fn send_dm(chat: &Chat, socket: &Socket, me: i64, args: &Args) {
    const FAILED: &str = "Failed to send DM";
    let Some(map) = payload(args) else {
        emit_error(socket, "Invalid DM parameters");
        return;
    };
    let to = match id_in(&map, "toId", BAD_USER) {
        Ok(to) => to,
        Err(e) => return emit_chat_error(socket, &e, FAILED),
    };
    let Some(content) = content_in(&map) else {
        emit_error(socket, "Invalid DM parameters");
        return;
    };
    if let Err(e) = chat.send_dm(me, to, content).await {
        emit_chat_error(socket, &e, FAILED);
    }
}

/// `sendGroupMessage {groupId, content}`: stored, then `newGroupMessage` to the group's room.
async fn send_group_message(chat: &Chat, socket: &Socket, me: i64, args: &Args) {
    const FAILED: &str = "Failed to send group message";
    let Some(map) = payload(args) else {
        emit_error(socket, "Invalid group message parameters");
        return;
    };
    let group = match id_in(&map, "groupId", BAD_GROUP) {
        Ok(group) => group,
        Err(e) => return emit_chat_error(socket, &e, FAILED),
    };
    let Some(content) = content_in(&map) else {
        emit_error(socket, "Invalid group message parameters");
        return;
    };
    if let Err(e) = chat.send_group_message(me, group, content, Via::Socket).await {
        emit_chat_error(socket, &e, FAILED);
    }
}

/// `before` and `limit` of a history request: a message id and a count (integers or numeric
/// strings), each optional (`null` counts as absent).
fn page_in(map: &serde_json::Map<String, Value>) -> Result<Page, ChatError> {
    let present = |key: &str| map.get(key).filter(|v| !v.is_null());
    let before = present("before").map(|v| Chat::id_from_json(v, "Invalid before")).transpose()?;
    let limit = present("limit")
        .map(|v| Chat::id_from_json(v, "Invalid limit"))
        .transpose()?
        .map(|l| u32::try_from(l).unwrap_or(u32::MAX));
    Ok(Page { before, limit })
}

/// `getDMHistory {otherId, before?, limit?}` + ack: the pair's messages, oldest first, or
/// `{error}`.
async fn dm_history(chat: &Chat, socket: &Socket, me: i64, args: &Args, ack: Option<AckSender>) {
    const FAILED: &str = "Failed to get DM history";
    let Some(ack) = needs_ack(socket, "getDMHistory", ack) else { return };
    let Some(map) = payload(args) else {
        return answer_error(ack, BAD_USER);
    };
    let asked = id_in(&map, "otherId", BAD_USER).and_then(|other| Ok((other, page_in(&map)?)));
    let result = match asked {
        Ok((other, page)) => chat.dm_history(me, other, page).await,
        Err(e) => Err(e),
    };
    answer(ack, result, FAILED);
}

/// `getGroupHistory {groupId, before?, limit?}` + ack: the group's messages, oldest first, or
/// `{error}`.
async fn group_history(chat: &Chat, socket: &Socket, me: i64, args: &Args, ack: Option<AckSender>) {
    const FAILED: &str = "Failed to get group history";
    let Some(ack) = needs_ack(socket, "getGroupHistory", ack) else { return };
    let Some(map) = payload(args) else {
        return answer_error(ack, BAD_GROUP);
    };
    let asked = id_in(&map, "groupId", BAD_GROUP).and_then(|group| Ok((group, page_in(&map)?)));
    let result = match asked {
        Ok((group, page)) => chat.group_history(me, group, page).await,
        Err(e) => Err(e),
    };
    answer(ack, result, FAILED);
}

/// The ack a history request must carry; without one it gets `error` (its answer would have
/// nowhere to go).
fn needs_ack(socket: &Socket, event: &str, ack: Option<AckSender>) -> Option<AckSender> {
    if ack.is_none() {
        emit_error(socket, &format!("{event} needs an acknowledgement callback"));
    }
    ack
}

/// Acks a history: the bare array, or `{error}`.
fn answer<T: serde::Serialize>(ack: AckSender, result: Result<Vec<T>, ChatError>, failed: &'static str) {
    let args = match result {
        Ok(messages) => Args::json(&messages),
        Err(e) => Args::json(&error_body(&e, failed)),
    };
    match args {
        Ok(args) => {
            let _ = ack.send(&args);
        }
        Err(e) => {
            tracing::warn!(error = %e, "chat: history not encoded");
            answer_error(ack, failed);
        }
    }
}

fn answer_error(ack: AckSender, text: &str) {
    if let Ok(args) = Args::json(&serde_json::json!({ "error": text })) {
        let _ = ack.send(&args);
    }
}

/// `{error}` for a chat error: the service's message, `retryAfter` (whole seconds, rounded up)
/// when its rate limit refused, and `failed` for a server fault (logged here, once).
fn error_body(e: &ChatError, failed: &'static str) -> Value {
    match e {
        ChatError::RateLimited(wait) => serde_json::json!({
            "error": e.to_string(),
            "retryAfter": crate::ratelimit::retry_after_secs(*wait),
        }),
        e if e.is_internal() => {
            tracing::error!(error = %e, "chat socket: {failed}");
            serde_json::json!({ "error": failed })
        }
        e => serde_json::json!({ "error": e.to_string() }),
    }
}

fn emit_chat_error(socket: &Socket, e: &ChatError, failed: &'static str) {
    emit(socket, &error_body(e, failed));
}

/// `error {error: text}`.
fn emit_error(socket: &Socket, text: &str) {
    emit(socket, &serde_json::json!({ "error": text }));
}

fn emit(socket: &Socket, body: &Value) {
    if let Ok(args) = Args::json(body) {
        let _ = socket.emit("error", &args);
    }
}

/// Serves a request to the chat socket's endpoint. Its CORS is the chat routes' (`*`, no
/// credentials: [`super::cors`], layered on the route), so the `Origin` is taken off first: the
/// endpoint would otherwise answer an allowed one itself, reflected and with credentials.
pub async fn serve(endpoint: &Endpoint, client: Option<IpAddr>, mut req: Request) -> Response {
    req.headers_mut().remove(header::ORIGIN);
    endpoint.serve(client, req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_events_are_bounded_in_bytes() {
        let queued = AtomicUsize::new(0);
        assert!(reserve(&queued, 200 * 1024));
        assert!(!reserve(&queued, 100 * 1024), "past the budget");
        assert_eq!(queued.load(Ordering::Acquire), 200 * 1024, "a refusal leaves the count as it was");
        assert!(reserve(&queued, 56 * 1024), "up to the budget");
        queued.fetch_sub(256 * 1024, Ordering::AcqRel);
        assert!(reserve(&queued, 1_000_000 / 4));
    }
}
