//! `bench floor-server`: the least a Pusher server can do to deliver, as a yardstick for the
//! latency scenarios. It accepts WebSocket subscribers (upgrade, `connection_established`,
//! `subscription_succeeded`) and `POST /apps/ID/events` on keep-alive connections (no signature
//! check, no limits), and writes each event with one blocking `write` per subscriber in accept
//! order: no runtime, no queues, no batching. This machine's speed varies from day to day by a
//! factor of two; run beside Switchboard (`scripts/bench.sh --floor`), it tells what share of a
//! latency figure is the kernel's loopback `send`, which no server can avoid, and what share is
//! the server's own.
//!
//! It trusts its client (the `bench` generator on loopback): it is not a server to expose.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{Context, bail};
use parking_lot::Mutex;
use serde_json::{Value, json};
use switchboard::transport::ws::text_frame;

use crate::ws::{find, take_frame};

const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 1 << 20;
/// Handshakes and reads need little stack; 10,000 subscriber threads should not reserve 2 MiB each.
const THREAD_STACK: usize = 64 * 1024;

struct Subscriber {
    /// Shared with the reader thread: a `try_clone` would cost a second descriptor per subscriber.
    stream: Arc<TcpStream>,
    /// Set by the subscriber's reader thread when the client went away.
    gone: AtomicBool,
}

#[derive(Default)]
struct Floor {
    /// In accept order, like Switchboard's channel map.
    subscribers: Mutex<Vec<Arc<Subscriber>>>,
    next_id: AtomicU64,
}

/// Listens on `listen` and serves until killed; logs `listening on http://ADDR` like `switchboard serve`.
pub fn run(listen: &str) -> anyhow::Result<()> {
    let listener = TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    eprintln!("bench floor-server: listening on http://{}", listener.local_addr()?);
    serve(&listener);
    Ok(())
}

fn serve(listener: &TcpListener) {
    let floor = Arc::new(Floor::default());
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let floor = floor.clone();
        let spawned = std::thread::Builder::new().stack_size(THREAD_STACK).spawn(move || {
            if let Err(e) = connection(&floor, stream) {
                eprintln!("bench floor-server: {e:#}");
            }
        });
        if let Err(e) = spawned {
            eprintln!("bench floor-server: cannot start a thread: {e}");
        }
    }
}

/// A buffered reader over one connection.
struct Conn {
    stream: Arc<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    /// Reads more into `buf`; false on end of stream.
    fn read_more(&mut self) -> anyhow::Result<bool> {
        let mut chunk = [0u8; 4096];
        loop {
            match (&*self.stream).read(&mut chunk) {
                Ok(0) => return Ok(false),
                Ok(k) => {
                    self.buf.extend_from_slice(&chunk[..k]);
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Reads until `buf` holds `n` bytes; false on end of stream.
    fn fill_to(&mut self, n: usize) -> anyhow::Result<bool> {
        while self.buf.len() < n {
            if !self.read_more()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The next request head (through the blank line), or None at end of stream.
    fn head(&mut self) -> anyhow::Result<Option<String>> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..i + 4]).into_owned();
                self.buf.drain(..i + 4);
                return Ok(Some(head));
            }
            if self.buf.len() > MAX_HEAD {
                bail!("request head over {MAX_HEAD} bytes");
            }
            if !self.read_more()? {
                return Ok(None);
            }
        }
    }

    /// The next client WebSocket frame as (opcode, unmasked payload), or None at end of stream.
    fn frame(&mut self) -> anyhow::Result<Option<(u8, Vec<u8>)>> {
        loop {
            if let Some((op, _, start, end)) = take_frame(&mut self.buf)? {
                let payload = self.buf[start..end].to_vec();
                self.buf.drain(..end);
                return Ok(Some((op, payload)));
            }
            if !self.read_more()? {
                return Ok(None);
            }
        }
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn connection(floor: &Floor, stream: TcpStream) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let mut conn = Conn { stream: Arc::new(stream), buf: Vec::with_capacity(1024) };
    let Some(head) = conn.head()? else { return Ok(()) };
    if head.starts_with("GET ") { subscriber(floor, conn, &head) } else { publisher(floor, conn, head) }
}

fn subscriber(floor: &Floor, mut conn: Conn, head: &str) -> anyhow::Result<()> {
    let key = header(head, "sec-websocket-key").context("no Sec-WebSocket-Key")?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let id = floor.next_id.fetch_add(1, Ordering::Relaxed);
    let established = json!({
        "event": "pusher:connection_established",
        "data": json!({"socket_id": format!("1.{id}"), "activity_timeout": 120}).to_string(),
    });
    let mut out = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes();
    out.extend(text_frame(established.to_string().as_bytes()));
    (&*conn.stream).write_all(&out)?;
    let channel = loop {
        let Some((op, payload)) = conn.frame()? else { return Ok(()) };
        if op == 0x8 {
            return Ok(());
        }
        let msg: Value = serde_json::from_slice(&payload).unwrap_or(Value::Null);
        if op == 0x1 && msg["event"] == "pusher:subscribe" {
            break msg["data"]["channel"].as_str().unwrap_or_default().to_owned();
        }
    };
    let ok = json!({"event": "pusher_internal:subscription_succeeded", "channel": channel, "data": "{}"});
    let sub = Arc::new(Subscriber { stream: conn.stream.clone(), gone: AtomicBool::new(false) });
    {
        // Listed before the client learns it is subscribed (an event published on that news
        // reaches it), and under the list's lock so that no event is written before the answer.
        let mut subscribers = floor.subscribers.lock();
        (&*conn.stream).write_all(&text_frame(ok.to_string().as_bytes()))?;
        subscribers.push(sub.clone());
    }
    // Reads on until the client leaves, then marks the subscriber for removal.
    while matches!(conn.frame(), Ok(Some((op, _))) if op != 0x8) {}
    sub.gone.store(true, Ordering::Relaxed);
    Ok(())
}

fn publisher(floor: &Floor, mut conn: Conn, first: String) -> anyhow::Result<()> {
    let mut head = first;
    loop {
        let len: usize = header(&head, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        if len > MAX_BODY || !conn.fill_to(len)? {
            return Ok(());
        }
        let body: Value = serde_json::from_slice(&conn.buf[..len]).unwrap_or(Value::Null);
        conn.buf.drain(..len);
        (&*conn.stream)
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")?;
        // One channel is all the scenarios use, and every subscriber is on it.
        if let Some(channel) = body["channels"][0].as_str().or_else(|| body["channel"].as_str()) {
            let event = json!({"event": body["name"], "channel": channel, "data": body["data"]});
            fan_out(floor, &text_frame(event.to_string().as_bytes()));
        }
        head = match conn.head()? {
            Some(h) => h,
            None => return Ok(()),
        };
    }
}

/// One `write` per subscriber, in accept order; subscribers that left are dropped.
fn fan_out(floor: &Floor, frame: &[u8]) {
    let mut subscribers = floor.subscribers.lock();
    subscribers.retain(|s| !s.gone.load(Ordering::Relaxed) && (&*s.stream).write_all(frame).is_ok());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_until(stream: &mut TcpStream, buf: &mut Vec<u8>, needle: &[u8]) {
        // A frame that never comes fails the test instead of hanging it.
        stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("read timeout");
        let mut chunk = [0u8; 4096];
        while !buf.windows(needle.len()).any(|w| w == needle) {
            let n = stream.read(&mut chunk).expect("read");
            assert!(
                n > 0,
                "closed before {:?}; got {:?}",
                String::from_utf8_lossy(needle),
                String::from_utf8_lossy(buf)
            );
            buf.extend_from_slice(&chunk[..n]);
        }
    }

    #[test]
    fn subscribes_and_delivers_a_published_event() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || serve(&listener));

        let mut sub = TcpStream::connect(addr).expect("connect");
        sub.write_all(
            b"GET /app/k HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .expect("upgrade");
        let mut got = Vec::new();
        read_until(&mut sub, &mut got, b"pusher:connection_established");
        // RFC 6455's sample key and its accept value.
        assert!(String::from_utf8_lossy(&got).contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        let subscribe = br#"{"event":"pusher:subscribe","data":{"channel":"c"}}"#;
        let mut frame = vec![0x81, 0x80 | subscribe.len() as u8, 1, 2, 3, 4];
        frame.extend(subscribe.iter().enumerate().map(|(i, b)| b ^ [1, 2, 3, 4][i & 3]));
        sub.write_all(&frame).expect("subscribe");
        read_until(&mut sub, &mut got, b"pusher_internal:subscription_succeeded");

        let mut publisher = TcpStream::connect(addr).expect("connect");
        let body = br#"{"name":"e","channels":["c"],"data":"~SB1.2~"}"#;
        let head = format!("POST /apps/1/events HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len());
        publisher.write_all(&[head.as_bytes(), body].concat()).expect("publish");
        let mut answer = Vec::new();
        read_until(&mut publisher, &mut answer, b"{}");
        assert!(answer.starts_with(b"HTTP/1.1 200 OK"));
        read_until(&mut sub, &mut got, br#""data":"~SB1.2~""#);
        assert!(String::from_utf8_lossy(&got).contains(r#""event":"e""#));
    }
}
