//! Fan-out: one event becomes at most one frame per transport and dialect, shared (`Bytes`) by
//! every subscriber that speaks it, queued with `try_send`. Nothing here waits or allocates per
//! subscriber; a subscriber whose outbox is full is marked slow and closes itself.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::Event;
use super::conn::{ConnHandle, Dialect, Transport};
use super::registry::Channel;

/// Turns an event of an app (its id) into one transport's frame. Registered by each surface.
pub type Encoder = Arc<dyn Fn(&str, &Event) -> Bytes + Send + Sync>;

const SLOTS: usize = Transport::COUNT * Dialect::COUNT;

/// One encoder slot per transport and dialect.
#[derive(Default)]
pub(crate) struct Encoders {
    slots: [OnceLock<Encoder>; SLOTS],
    /// Dialects handed out per transport (the default one is not counted).
    dialects: [AtomicU8; Transport::COUNT],
}

fn slot(transport: Transport, dialect: Dialect) -> usize {
    transport as usize * Dialect::COUNT + dialect.index()
}

impl Encoders {
    /// The encoder of a transport's default dialect (the first registration wins).
    pub fn register(&self, transport: Transport, encoder: Encoder) {
        let _ = self.slots[slot(transport, Dialect::DEFAULT)].set(encoder);
    }

    /// A new dialect of `transport` encoded by `encoder`; `None` once all are taken.
    pub fn add_dialect(&self, transport: Transport, encoder: Encoder) -> Option<Dialect> {
        let taken = &self.dialects[transport as usize];
        let n = taken.fetch_add(1, Ordering::AcqRel).saturating_add(1);
        let dialect = Dialect::new(n)?;
        let _ = self.slots[slot(transport, dialect)].set(encoder);
        Some(dialect)
    }

    fn get(&self, transport: Transport, dialect: Dialect) -> Option<&Encoder> {
        self.slots[slot(transport, dialect)].get()
    }

    /// The frame of `event` for one connection (for messages addressed to a single one).
    pub fn encode_for(&self, conn: &ConnHandle, event: &Event) -> Option<Bytes> {
        self.get(conn.transport, conn.dialect()).map(|encode| encode(&conn.app(), event))
    }
}

/// Queues `event` for every subscriber of `channel` but `event.except`; returns how many got it.
pub(crate) fn fan_out(encoders: &Encoders, app: &str, channel: &Channel, event: &Event) -> usize {
    let mut frames: [Option<Bytes>; SLOTS] = Default::default();
    let mut delivered = 0;
    for (socket_id, sub) in &channel.subscribers {
        if event.except == Some(*socket_id) || !sub.conn.wants(event) {
            continue;
        }
        let (t, d) = (sub.conn.transport, sub.conn.dialect());
        let i = slot(t, d);
        let frame = match &frames[i] {
            Some(frame) => frame.clone(),
            None => {
                let Some(encode) = encoders.get(t, d) else {
                    continue;
                };
                let frame = encode(app, event);
                frames[i] = Some(frame.clone());
                frame
            }
        };
        if sub.conn.try_send(frame) {
            delivered += 1;
        }
    }
    delivered
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::broker::MemoryBroker;
    use crate::core::{ChannelName, ChannelRules, Data, OutboxLimits, Realtime};

    static ENCODED: AtomicUsize = AtomicUsize::new(0);

    fn counted(prefix: &'static str) -> Encoder {
        Arc::new(move |app: &str, e: &Event| {
            ENCODED.fetch_add(1, Ordering::Relaxed);
            Bytes::from(format!("{prefix}:{app}:{}", e.name))
        })
    }

    #[test]
    fn a_broadcast_is_encoded_once_per_dialect_in_use() {
        let rt = Realtime::new(Arc::new(MemoryBroker::new()), OutboxLimits { max_bytes: 1 << 20, max_frames: 64 });
        rt.register_encoder(Transport::SocketIo, |e| Bytes::from(format!("plain:{}", e.name)));
        let named = rt.register_dialect(Transport::SocketIo, counted("named")).unwrap();
        let app: Arc<str> = "7".into();
        let rules = ChannelRules { max_members: 10, max_channels: 10, subscription_count: false };
        let channel = ChannelName::parse("orders").unwrap();
        let conns: Vec<_> = (0..4).map(|_| rt.connect(&app, Transport::SocketIo, 0).unwrap()).collect();
        conns[2].set_dialect(named);
        conns[3].set_dialect(named);
        for c in &conns {
            rt.subscribe(c, &channel, None, &rules).unwrap();
        }
        let before = ENCODED.load(Ordering::Relaxed);
        let event = Event {
            channel: Some(channel),
            name: "message".into(),
            data: Data::Text("x".into()),
            user_id: None,
            except: None,
        };
        rt.publish(&app, event).unwrap();
        assert_eq!(ENCODED.load(Ordering::Relaxed) - before, 1);
        let frames: Vec<Bytes> = conns
            .iter()
            .map(|c| {
                let mut batch = Vec::new();
                c.drain(&mut batch);
                batch.pop().unwrap()
            })
            .collect();
        assert_eq!(&frames[0][..], b"plain:message");
        assert_eq!(&frames[2][..], b"named:7:message");
        // Shared, not copied: the subscribers of one dialect hold the same bytes.
        assert_eq!(frames[2].as_ptr(), frames[3].as_ptr());
        assert_eq!(frames[0].as_ptr(), frames[1].as_ptr());
    }

    #[test]
    fn dialects_run_out() {
        let rt = Realtime::new(Arc::new(MemoryBroker::new()), OutboxLimits { max_bytes: 1024, max_frames: 4 });
        let got: Vec<_> = (0..Dialect::COUNT).map(|_| rt.register_dialect(Transport::Notif, counted("n"))).collect();
        assert!(got[..Dialect::COUNT - 1].iter().all(Option::is_some));
        assert_eq!(got[Dialect::COUNT - 1], None);
    }

    #[test]
    fn socketio_only_events_skip_other_transports() {
        let rt = Realtime::new(Arc::new(MemoryBroker::new()), OutboxLimits { max_bytes: 1 << 20, max_frames: 64 });
        rt.register_encoder(Transport::Pusher, |e| Bytes::from(format!("pusher:{}", e.name)));
        rt.register_encoder(Transport::SocketIo, |e| Bytes::from(format!("sio:{}", e.name)));
        let app: Arc<str> = "relay".into();
        let rules = ChannelRules { max_members: 10, max_channels: 10, subscription_count: false };
        let channel = ChannelName::parse("room").unwrap();
        let pusher = rt.connect(&app, Transport::Pusher, 0).unwrap();
        let sio = rt.connect(&app, Transport::SocketIo, 0).unwrap();
        sio.skip_extras();
        for c in [&pusher, &sio] {
            rt.subscribe(c, &channel, None, &rules).unwrap();
        }
        let name = format!("{}message", crate::core::events::SOCKETIO_ONLY);
        let event = Event {
            channel: Some(channel),
            name: name.as_str().into(),
            data: Data::Text("x".into()),
            user_id: None,
            except: None,
        };
        rt.publish(&app, event).unwrap();
        let (mut p, mut s) = (Vec::new(), Vec::new());
        pusher.drain(&mut p);
        sio.drain(&mut s);
        assert!(p.is_empty(), "a Pusher connection never gets a Socket.IO-only event");
        assert_eq!(s, vec![Bytes::from(format!("sio:{name}"))]);
    }

    #[test]
    fn a_connection_moves_to_another_app_before_it_joins() {
        let rt = Realtime::new(Arc::new(MemoryBroker::new()), OutboxLimits { max_bytes: 1024, max_frames: 4 });
        let rules = ChannelRules { max_members: 10, max_channels: 10, subscription_count: false };
        let (lobby, app): (Arc<str>, Arc<str>) = ("lobby".into(), "7".into());
        let a = rt.connect(&lobby, Transport::SocketIo, 0).unwrap();
        let b = rt.connect(&lobby, Transport::SocketIo, 0).unwrap();
        rt.move_to_app(&a, &app, 1).unwrap();
        assert_eq!((rt.connection_count("lobby"), rt.connection_count("7")), (1, 1));
        assert_eq!(rt.move_to_app(&b, &app, 1), Err(crate::core::MoveError::OverQuota));
        assert_eq!(rt.connection_count("lobby"), 1, "a refused move leaves the connection where it was");
        rt.subscribe(&a, &ChannelName::parse("orders").unwrap(), None, &rules).unwrap();
        assert_eq!(rt.move_to_app(&a, &lobby, 0), Err(crate::core::MoveError::Joined));
        rt.disconnect(&a, &rules);
        rt.disconnect(&b, &rules);
        assert_eq!((rt.connection_count("lobby"), rt.connection_count("7")), (0, 0));
        assert_eq!(rt.move_to_app(&a, &app, 0), Err(crate::core::MoveError::Closed));
    }
}
