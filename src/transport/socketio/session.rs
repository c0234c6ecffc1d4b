//! The Socket.IO side of one Engine.IO connection: packets in (text, then the binary
//! attachments they announced), namespaces joined and left, handlers called, the connect
//! timeout. The Engine.IO layer owns the transport and calls in; answers go out through the
//! connection's outbox. Any packet the codec refuses, or one that breaks the protocol's order,
//! ends the connection (the reference server closes it too); a handler that panics ends only
//! this connection.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::args::Args;
use super::codec::{self, Body, Packet};
use super::handshake::HandshakeInfo;
use super::limits::DecodeError;
use super::namespace::{ConnectRefusal, Message};
use super::server::Server;
use super::socket::{Accepted, AckSender, DisconnectReason, Shared, Socket};
use crate::core::{ChannelRules, ConnHandle};
use crate::transport::engineio::message_frame;

/// Why the Socket.IO layer ends a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Close {
    #[error("malformed packet: {0}")]
    Malformed(#[from] DecodeError),
    #[error("a text packet arrived while attachments were awaited")]
    TextDuringAttachments,
    #[error("a binary frame arrived that no packet announced")]
    UnexpectedBinary,
    #[error("attachments over {0} bytes")]
    AttachmentsTooLarge(usize),
    #[error("packet for a namespace in the wrong state")]
    InvalidState,
    #[error("no namespace connected within the connect timeout")]
    ConnectTimeout,
    #[error("a handler panicked")]
    HandlerPanicked,
}

/// What the Engine.IO layer does next.
pub type Flow = Result<(), Close>;

/// A binary packet waiting for its attachments.
struct Pending {
    text: String,
    want: usize,
    got: Vec<Bytes>,
    bytes: usize,
}

/// The Socket.IO state of one connection.
pub struct Session {
    server: Arc<Server>,
    shared: Arc<Shared>,
    /// Sockets in their namespaces; at most one per registered namespace.
    sockets: Vec<Socket>,
    /// Boxed: most connections never send binary, and this is part of every one of them.
    pending: Option<Box<Pending>>,
    /// When what connect handlers emitted goes out.
    release_at: Option<Instant>,
}

/// How long after a CONNECT answer the packets its connect handler emitted follow. The
/// reference server writes them once the answer's write has completed, so clients read them
/// separately, and some (the official protocol suite among them) lose a message that arrives in
/// the same read as the one they were waiting for.
const AFTER_CONNECT: Duration = Duration::from_millis(2);

impl Session {
    /// Starts the Socket.IO layer on a core connection; `rules` bound its channels.
    pub fn new(server: Arc<Server>, conn: ConnHandle, rules: ChannelRules, handshake: HandshakeInfo) -> Self {
        // Pusher-protocol extras mean nothing to Socket.IO clients.
        conn.skip_extras();
        let shared = Shared::new(conn, server.realtime.clone(), rules, handshake);
        Self { server, shared, sockets: Vec::new(), pending: None, release_at: None }
    }

    /// The core connection this session runs on.
    pub fn conn(&self) -> &ConnHandle {
        &self.shared.conn
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The namespaces the client is in, in the order it joined them.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.sockets.iter().filter(|s| s.is_connected()).map(Socket::namespace)
    }

    /// When [`Session::on_timer`] should run: the connect timeout while the connection is in
    /// no namespace, and the release of what connect handlers emitted.
    pub fn deadline(&self) -> Option<Instant> {
        match (self.connect_deadline(), self.release_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A deadline passed: connect handlers' packets go out; a connection in no namespace for
    /// the connect timeout is closed.
    pub fn on_timer(&mut self, now: Instant) -> Flow {
        if self.release_at.is_some_and(|at| at <= now) {
            self.release_at = None;
            for socket in &self.sockets {
                socket.release();
            }
        }
        match self.connect_deadline() {
            Some(at) if now >= at => Err(Close::ConnectTimeout),
            _ => Ok(()),
        }
    }

    /// When a connection in no namespace is closed: `connectTimeout` after it opened, or after
    /// its last namespace was left (a client's DISCONNECT, the server's, from any task), so a
    /// connection that holds no namespace does not hold its app's quota for as long as it
    /// answers pings. `None` while a namespace is joined.
    fn connect_deadline(&self) -> Option<Instant> {
        if self.sockets.iter().any(|s| !s.is_closed()) {
            return None;
        }
        Some(self.shared.idle_since() + self.server.connect_timeout)
    }

    /// An Engine.IO message with text (the Socket.IO packet).
    pub fn on_text(&mut self, text: &str) -> Flow {
        if self.pending.is_some() {
            return Err(Close::TextDuringAttachments);
        }
        let packet = codec::decode(text)?;
        let want = packet.body.attachments();
        if want > 0 {
            self.pending =
                Some(Box::new(Pending { text: text.to_owned(), want, got: Vec::with_capacity(want), bytes: 0 }));
            return Ok(());
        }
        self.dispatch(packet, Vec::new())
    }

    /// An Engine.IO binary message: the next attachment of the awaited packet.
    pub fn on_binary(&mut self, data: Bytes) -> Flow {
        let Some(pending) = &mut self.pending else {
            return Err(Close::UnexpectedBinary);
        };
        pending.bytes += data.len();
        if pending.bytes > self.server.max_attachment_bytes {
            return Err(Close::AttachmentsTooLarge(self.server.max_attachment_bytes));
        }
        pending.got.push(data);
        if pending.got.len() < pending.want {
            return Ok(());
        }
        let Some(done) = self.pending.take() else {
            return Ok(());
        };
        let Pending { text, got, .. } = *done;
        let packet = codec::decode(&text)?;
        self.dispatch(packet, got)
    }

    /// The connection ended: every socket leaves its namespace. The caller then ends the core
    /// connection.
    pub fn finish(&mut self) {
        for socket in std::mem::take(&mut self.sockets) {
            let _ = guarded(|| socket.close(DisconnectReason::TransportClose));
        }
    }

    /// Forgets sockets the server disconnected meanwhile.
    fn prune(&mut self) {
        self.sockets.retain(|s| !s.is_closed());
    }

    fn dispatch(&mut self, packet: Packet<'_>, attachments: Vec<Bytes>) -> Flow {
        self.prune();
        let at = self.sockets.iter().position(|s| s.namespace() == packet.nsp);
        match (packet.body, at) {
            (Body::Connect { auth }, None) => self.connect(packet.nsp, auth.unwrap_or("{}")),
            (Body::Connect { .. }, Some(_)) => Err(Close::InvalidState),
            (_, None) => Err(Close::InvalidState),
            (Body::Disconnect, Some(at)) => {
                let socket = self.sockets.swap_remove(at);
                guarded(|| socket.close(DisconnectReason::ClientNamespaceDisconnect))
            }
            (Body::Event { name, args, ack, .. }, Some(at)) => {
                let socket = &self.sockets[at];
                let handler = self.server.namespace(socket.namespace()).and_then(|ns| ns.handlers.event_handler(&name));
                let Some(handler) = handler.cloned() else {
                    // The client's text: shortened and escaped before it reaches a log line.
                    let shown: String = name.chars().take(64).flat_map(char::escape_debug).collect();
                    tracing::debug!(event = %shown, "socket.io event without a handler");
                    return Ok(());
                };
                let message = Message {
                    name: name.into_owned(),
                    args: Args::from_parts(args, attachments),
                    ack: ack.map(|id| AckSender::new(socket.clone(), id)),
                };
                guarded(|| handler(socket, message))
            }
            (Body::Ack { id, args, .. }, Some(at)) => {
                let socket = &self.sockets[at];
                let args = Args::from_parts(args, attachments);
                guarded(|| socket.acked(id, args))
            }
        }
    }

    fn connect(&mut self, nsp: &str, auth: &str) -> Flow {
        let Some(ns) = self.server.namespace(nsp) else {
            self.refuse(nsp, &ConnectRefusal::new("Invalid namespace"));
            return Ok(());
        };
        let socket = Socket::new(ns.shared.clone(), self.shared.clone());
        let verdict = match ns.handlers.connect_handler() {
            Some(handler) => {
                let handler = handler.clone();
                match catch_unwind(AssertUnwindSafe(|| handler(&socket, auth))) {
                    Ok(verdict) => verdict,
                    Err(_) => {
                        socket.refuse();
                        return Err(panicked());
                    }
                }
            }
            None => Ok(()),
        };
        match verdict {
            Ok(()) => match socket.accept() {
                Accepted::Connected => self.sockets.push(socket),
                Accepted::Pending => {
                    self.sockets.push(socket);
                    self.release_at.get_or_insert_with(|| Instant::now() + AFTER_CONNECT);
                }
                // The outbox refused the answer (the connection is closing).
                Accepted::Failed => socket.refuse(),
            },
            Err(refusal) => {
                socket.refuse();
                self.refuse(nsp, &refusal);
            }
        }
        Ok(())
    }

    fn refuse(&self, nsp: &str, refusal: &ConnectRefusal) {
        let mut packet = Vec::new();
        codec::write_connect_error(&mut packet, nsp, &refusal.to_json());
        self.shared.conn.try_send(message_frame(&packet));
    }
}

/// Runs a program's handler; a panic in it ends this connection, not the server's task.
fn guarded(f: impl FnOnce()) -> Flow {
    catch_unwind(AssertUnwindSafe(f)).map_err(|_| panicked())
}

fn panicked() -> Close {
    tracing::error!("a Socket.IO handler panicked; its connection is closed");
    Close::HandlerPanicked
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::broker::MemoryBroker;
    use crate::core::{ChannelName, Data, Event, OutboxLimits, Realtime, Transport};
    use crate::transport::socketio::{DEFAULT_CONNECT_TIMEOUT, Namespace, SocketIo};

    const RULES: ChannelRules = ChannelRules { max_members: 10, max_channels: 2, subscription_count: false };

    fn realtime() -> Realtime {
        Realtime::new(Arc::new(MemoryBroker::new()), OutboxLimits { max_bytes: 1 << 20, max_frames: 256 })
    }

    /// The conformance setup: `/` and `/custom`, `auth` emitted back, an echo and an ack.
    fn conformance() -> SocketIo {
        let ns = || {
            Namespace::new()
                .on_connect(|socket, auth| {
                    let auth: serde_json::Value = serde_json::from_str(auth).unwrap();
                    socket.emit("auth", &Args::json(&auth).unwrap()).unwrap();
                    Ok(())
                })
                .on("message", |socket, m| socket.emit("message-back", &m.args).unwrap())
                .on("message-with-ack", |_, m| m.ack.unwrap().send(&m.args).unwrap())
        };
        SocketIo::new().namespace("/", ns()).namespace("/custom", ns())
    }

    fn session(io: SocketIo, rt: &Realtime) -> Session {
        let server = io.bind(rt).unwrap();
        let conn = rt.connect(&"app".into(), Transport::SocketIo, 0).unwrap();
        Session::new(server, conn, RULES, HandshakeInfo::default())
    }

    /// What the connection was sent (connect handlers' packets released first): Engine.IO
    /// packets as text, binaries as `<hex>`.
    fn sent(s: &mut Session) -> Vec<String> {
        if let Some(at) = s.release_at {
            s.on_timer(at).unwrap();
        }
        let mut batch = Vec::new();
        s.conn().drain(&mut batch);
        batch
            .iter()
            .map(|f| {
                let (binary, p) = crate::transport::ws::frame_payload(f).unwrap();
                if binary { format!("<{}>", hex::encode(p)) } else { String::from_utf8(p.to_vec()).unwrap() }
            })
            .collect()
    }

    fn sid_of(answer: &str, prefix: &str) -> String {
        let v: serde_json::Value = serde_json::from_str(answer.strip_prefix(prefix).unwrap()).unwrap();
        v["sid"].as_str().unwrap().to_owned()
    }

    #[test]
    fn connects_to_namespaces_with_auth() {
        let rt = realtime();
        let mut s = session(conformance(), &rt);
        s.on_text("0").unwrap();
        let out = sent(&mut s);
        assert_eq!(sid_of(&out[0], "40").len(), 24);
        assert_eq!(out[1], r#"42["auth",{}]"#);
        s.on_text(r#"0/custom,{"token":"abc"}"#).unwrap();
        let out = sent(&mut s);
        sid_of(&out[0], "40/custom,");
        assert_eq!(out[1], r#"42/custom,["auth",{"token":"abc"}]"#);
        s.on_text("0/random").unwrap();
        assert_eq!(sent(&mut s), [r#"44/random,{"message":"Invalid namespace"}"#]);
        // Connected twice to one namespace: the reference server closes the connection.
        assert_eq!(s.on_text("0/custom,"), Err(Close::InvalidState));
    }

    #[test]
    fn a_connect_handler_may_answer_then_disconnect() {
        let rt = realtime();
        let ns = Namespace::new().on_connect(|socket, _| {
            socket.emit("error", &Args::json(&serde_json::json!({"error": "Authentication failed"})).unwrap()).unwrap();
            socket.disconnect();
            assert_eq!(socket.emit("late", &Args::new()), Err(super::super::EmitError::Disconnected));
            Ok(())
        });
        let mut s = session(SocketIo::new().namespace("/", ns), &rt);
        s.on_text("0").unwrap();
        let out = sent(&mut s);
        assert!(out[0].starts_with("40{"));
        assert_eq!(&out[1..], [r#"42["error",{"error":"Authentication failed"}]"#, "41"]);
        // Out of the namespace: it may connect again.
        s.on_text("0").unwrap();
    }

    #[test]
    fn a_connect_handler_may_join_channels() {
        let rt = realtime();
        let orders = ChannelName::parse("orders").unwrap();
        let joined = orders.clone();
        let ns = Namespace::new().on_connect(move |socket, _| {
            socket.join(&joined).unwrap();
            Ok(())
        });
        let mut s = session(SocketIo::new().namespace("/", ns), &rt);
        s.on_text("0").unwrap();
        sent(&mut s);
        let event = Event {
            channel: Some(orders),
            name: "m".into(),
            data: Data::Text("x".into()),
            user_id: None,
            except: None,
        };
        rt.publish(&"app".into(), event).unwrap();
        assert_eq!(sent(&mut s), [r#"42["m","x"]"#]);
    }

    #[test]
    fn a_refused_connect_gets_its_data_and_emits_nothing() {
        let rt = realtime();
        let ns = Namespace::new().on_connect(|socket, auth| {
            socket.emit("early", &Args::new()).unwrap();
            if auth.contains("secret") {
                Ok(())
            } else {
                Err(ConnectRefusal::new("Not authorized").with_data(&serde_json::json!({"retry": false})))
            }
        });
        let mut s = session(SocketIo::new().namespace("/", ns), &rt);
        s.on_text(r#"0{"token":"x"}"#).unwrap();
        assert_eq!(sent(&mut s), [r#"44{"message":"Not authorized","data":{"retry":false}}"#]);
        s.on_text(r#"0{"token":"secret"}"#).unwrap();
        let out = sent(&mut s);
        assert!(out[0].starts_with("40{"));
        assert_eq!(out[1], r#"42["early"]"#);
    }

    #[test]
    fn a_refused_or_panicking_connect_leaves_what_its_handler_joined() {
        let rt = realtime();
        let orders = ChannelName::parse("orders").unwrap();
        let joined = orders.clone();
        let ns = Namespace::new().on_connect(move |socket, auth| {
            socket.join(&joined).unwrap();
            match auth {
                r#"{"panic":true}"# => panic!("connect bug"),
                r#"{"ok":true}"# => Ok(()),
                _ => Err(ConnectRefusal::new("Not authorized")),
            }
        });
        let io = SocketIo::new().namespace("/", ns);
        let mut s = session(io.clone(), &rt);
        s.on_text("0").unwrap();
        assert_eq!(sent(&mut s), [r#"44{"message":"Not authorized"}"#]);
        assert_eq!(rt.channel_stats("app", &orders).subscription_count, 0);
        let event = Event {
            channel: Some(orders.clone()),
            name: "m".into(),
            data: Data::Text("x".into()),
            user_id: None,
            except: None,
        };
        rt.publish(&"app".into(), event).unwrap();
        assert!(sent(&mut s).is_empty(), "no channel event for a namespace it is not in");
        // Refused, it may still connect and join.
        s.on_text(r#"0{"ok":true}"#).unwrap();
        sent(&mut s);
        assert_eq!(rt.channel_stats("app", &orders).subscription_count, 1);
        let mut p = session(io, &rt);
        assert_eq!(p.on_text(r#"0{"panic":true}"#), Err(Close::HandlerPanicked));
        assert_eq!(rt.channel_stats("app", &orders).subscription_count, 1);
    }

    #[test]
    fn a_join_racing_the_socket_s_close_leaves_nothing_behind() {
        let rt = realtime();
        let orders = ChannelName::parse("orders").unwrap();
        for _ in 0..2000 {
            let mut s = session(SocketIo::new().namespace("/", Namespace::new()), &rt);
            s.on_text("0").unwrap();
            let (socket, channel) = (s.sockets[0].clone(), orders.clone());
            let go = Arc::new(std::sync::Barrier::new(2));
            let ready = go.clone();
            let joining = std::thread::spawn(move || {
                ready.wait();
                let _ = socket.join(&channel);
            });
            go.wait();
            s.on_text("1").unwrap();
            joining.join().unwrap();
            assert!(s.conn().channels().is_empty(), "a channel joined by a socket that left");
        }
    }

    #[test]
    fn events_acks_and_binary_attachments() {
        let rt = realtime();
        let mut s = session(conformance(), &rt);
        s.on_text("0").unwrap();
        sent(&mut s);
        s.on_text(r#"2["message",1,"2",{"3":[true]}]"#).unwrap();
        s.on_text(r#"2456["message-with-ack",1,"2",{"3":[false]}]"#).unwrap();
        assert_eq!(sent(&mut s), [r#"42["message-back",1,"2",{"3":[true]}]"#, r#"43456[1,"2",{"3":[false]}]"#]);
        let two = r#"{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}"#;
        s.on_text(&format!(r#"52-["message",{two}]"#)).unwrap();
        assert!(sent(&mut s).is_empty());
        s.on_binary(Bytes::from_static(&[1, 2, 3])).unwrap();
        s.on_binary(Bytes::from_static(&[4, 5, 6])).unwrap();
        assert_eq!(sent(&mut s), [format!(r#"452-["message-back",{two}]"#), "<010203>".into(), "<040506>".into()]);
        s.on_text(&format!(r#"52-789["message-with-ack",{two}]"#)).unwrap();
        s.on_binary(Bytes::from_static(&[1])).unwrap();
        s.on_binary(Bytes::from_static(&[2])).unwrap();
        assert_eq!(sent(&mut s), [format!("462-789[{two}]"), "<01>".into(), "<02>".into()]);
    }

    #[test]
    fn server_acks_reach_their_callback() {
        let rt = realtime();
        let got = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let seen = got.clone();
        let ns = Namespace::new().on("ask", move |socket, _| {
            let seen = seen.clone();
            socket
                .emit_with_ack("question", &Args::json(&"?").unwrap(), move |answer| {
                    seen.lock().push(answer.map(|a| a.text().to_owned()));
                })
                .unwrap();
        });
        let mut s = session(SocketIo::new().namespace("/", ns), &rt);
        s.on_text("0").unwrap();
        s.on_text(r#"2["ask"]"#).unwrap();
        s.on_text(r#"2["ask"]"#).unwrap();
        let out = sent(&mut s);
        assert_eq!(&out[1..], [r#"420["question","?"]"#, r#"421["question","?"]"#]);
        s.on_text(r#"31["yes"]"#).unwrap();
        // An unknown id is ignored.
        s.on_text(r#"39[]"#).unwrap();
        assert_eq!(*got.lock(), [Ok(r#""yes""#.to_owned())]);
        s.on_text("1").unwrap();
        assert_eq!(*got.lock(), [Ok(r#""yes""#.to_owned()), Err(super::super::AckError::Disconnected)]);
    }

    #[test]
    fn protocol_order_is_enforced() {
        let rt = realtime();
        let mut s = session(conformance(), &rt);
        assert_eq!(s.on_text(r#"2["message"]"#), Err(Close::InvalidState));
        s.on_text("0").unwrap();
        assert_eq!(s.on_binary(Bytes::from_static(b"x")), Err(Close::UnexpectedBinary));
        let mut s = session(conformance(), &rt);
        s.on_text("0").unwrap();
        s.on_text(r#"51-["message",{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!(s.on_text(r#"2["message"]"#), Err(Close::TextDuringAttachments));
        let mut s = session(conformance().max_attachment_bytes(4), &rt);
        s.on_text("0").unwrap();
        s.on_text(r#"51-["message",{"_placeholder":true,"num":0}]"#).unwrap();
        assert_eq!(s.on_binary(Bytes::from_static(b"12345")), Err(Close::AttachmentsTooLarge(4)));
        for bad in ["4abc", "42{}", r#"2abc["message-with-ack",1]"#, "51000000-[\"m\"]", "9"] {
            let mut s = session(conformance(), &rt);
            s.on_text("0").unwrap();
            assert!(matches!(s.on_text(bad), Err(Close::Malformed(_))), "{bad}");
        }
    }

    #[test]
    fn disconnect_leaves_the_namespace_and_the_connection_stays() {
        let rt = realtime();
        let left = Arc::new(AtomicUsize::new(0));
        let count = left.clone();
        let ns = Namespace::new()
            .on("message", |socket, m| socket.emit("message-back", &m.args).unwrap())
            .on_disconnect(move |_, reason| {
                assert_eq!(reason, DisconnectReason::ClientNamespaceDisconnect);
                count.fetch_add(1, Ordering::Relaxed);
            });
        let mut s = session(SocketIo::new().namespace("/", ns.clone()).namespace("/custom", ns), &rt);
        s.on_text("0").unwrap();
        s.on_text("0/custom").unwrap();
        s.on_text("1/custom").unwrap();
        assert_eq!(left.load(Ordering::Relaxed), 1);
        sent(&mut s);
        s.on_text(r#"2["message","to main"]"#).unwrap();
        assert_eq!(sent(&mut s), [r#"42["message-back","to main"]"#]);
        assert_eq!(s.on_text(r#"2/custom,["message"]"#), Err(Close::InvalidState));
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_in_no_namespace_times_out() {
        let rt = realtime();
        let mut s = session(conformance().connect_timeout(Duration::from_millis(1000)), &rt);
        let at = s.deadline().unwrap();
        assert_eq!(s.on_timer(at - Duration::from_millis(1)), Ok(()));
        assert_eq!(s.on_timer(at), Err(Close::ConnectTimeout));
        let mut s = session(conformance(), &rt);
        s.on_text("0").unwrap();
        // What the connect handler emitted follows the CONNECT answer a moment later.
        let release = s.deadline().unwrap();
        let mut batch = Vec::new();
        s.conn().drain(&mut batch);
        assert_eq!(batch.len(), 1);
        s.on_timer(release).unwrap();
        assert_eq!(s.deadline(), None);
        assert_eq!(sent(&mut s), [r#"42["auth",{}]"#]);
        // Out of its last namespace, it is a fresh connection again.
        tokio::time::advance(Duration::from_secs(60)).await;
        s.on_text("1").unwrap();
        let at = s.deadline().unwrap();
        assert_eq!(at, Instant::now() + DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(s.on_timer(at), Err(Close::ConnectTimeout));
    }

    #[test]
    fn a_panicking_handler_closes_its_connection_only() {
        let rt = realtime();
        let ns = Namespace::new().on("boom", |_, _| panic!("handler bug")).on("ok", |socket, _| {
            socket.emit("fine", &Args::new()).unwrap();
        });
        let io = SocketIo::new().namespace("/", ns);
        let mut bad = session(io.clone(), &rt);
        let mut good = session(io, &rt);
        bad.on_text("0").unwrap();
        good.on_text("0").unwrap();
        sent(&mut good);
        assert_eq!(bad.on_text(r#"2["boom"]"#), Err(Close::HandlerPanicked));
        good.on_text(r#"2["ok"]"#).unwrap();
        assert_eq!(sent(&mut good), [r#"42["fine"]"#]);
        let refusing = Namespace::new().on_connect(|_, _| panic!("connect bug"));
        let mut s = session(SocketIo::new().namespace("/", refusing), &rt);
        assert_eq!(s.on_text("0"), Err(Close::HandlerPanicked));
    }

    #[test]
    fn sockets_join_core_channels_named_by_their_namespace() {
        let rt = realtime();
        let naming: super::super::Naming = Arc::new(|app: &str, e: &Event| {
            format!("workspace:{app}:{}:{}", e.channel.as_ref().map_or("", |c| c.as_str()), e.name)
        });
        let orders = ChannelName::parse("orders").unwrap();
        let joining = {
            let orders = orders.clone();
            move |socket: &Socket, _: Message| {
                socket.join(&orders).unwrap();
            }
        };
        let io = SocketIo::new()
            .namespace("/", Namespace::new().channel_naming(naming).on("join", joining.clone()))
            .namespace("/plain", Namespace::new().on("join", joining));
        let mut named = session(io.clone(), &rt);
        named.on_text("0").unwrap();
        named.on_text(r#"2["join"]"#).unwrap();
        let mut plain = session(
            SocketIo::new().namespace(
                "/",
                Namespace::new().on("join", {
                    let orders = orders.clone();
                    move |socket: &Socket, _: Message| {
                        socket.join(&orders).unwrap();
                    }
                }),
            ),
            &rt,
        );
        plain.on_text("0").unwrap();
        plain.on_text(r#"2["join"]"#).unwrap();
        sent(&mut named);
        sent(&mut plain);
        let event = Event {
            channel: Some(orders.clone()),
            name: "message".into(),
            data: Data::Text("hi".into()),
            user_id: None,
            except: None,
        };
        rt.publish(&"app".into(), event.clone()).unwrap();
        assert_eq!(sent(&mut named), [r#"42["workspace:app:orders:message","hi"]"#]);
        assert_eq!(sent(&mut plain), [r#"42["message","hi"]"#]);
        // A namespace without channel naming other than `/` joins nothing.
        let mut other = session(io, &rt);
        other.on_text("0/plain").unwrap();
        assert!(matches!(other.on_text(r#"2/plain,["join"]"#), Err(Close::HandlerPanicked)));
        // Leaving the namespace leaves its channels.
        named.on_text("1").unwrap();
        rt.publish(&"app".into(), event).unwrap();
        assert!(sent(&mut named).is_empty());
        assert_eq!(rt.channel_stats("app", &orders).subscription_count, 1);
    }
}
