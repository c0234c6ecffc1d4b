//! Engine.IO's HTTP long-polling transport, client side, as cheap per delivery as the WebSocket
//! client: a hand-written HTTP/1.1 connection whose requests are built once per session and whose
//! responses are parsed in place in one read buffer (Content-Length, chunked or to the end of
//! the stream), no JSON parsing and no allocation per poll. A session holds two connections, as a
//! browser does: one for the long-poll GETs, one for the POSTs (pongs), the latter opened again
//! whenever the server closed it while idle.

use std::net::SocketAddr;
use std::ops::Range;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::api::query_value;
use crate::sio::{self, Handshake, Target};
use crate::stats::now_us;
use crate::tally::{Seen, Shared, shorten};
use crate::ws::find;

const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 16 << 20;
const READ_CHUNK: usize = 4096;
const INITIAL_BUFFER: usize = 2048;
/// Most round trips a setup may take before it is given up (open, CONNECT, join, and pings).
const MAX_SETUP_POLLS: usize = 20;

/// One HTTP/1.1 keep-alive connection.
pub struct HttpConn {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    /// The server said `Connection: close`, or closed the stream.
    closed: bool,
    eof: bool,
}

/// A complete response at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
struct Parsed {
    status: u16,
    body: Range<usize>,
    /// Bytes of the buffer the response took.
    consumed: usize,
    close: bool,
}

impl HttpConn {
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true).context("TCP_NODELAY")?;
        Ok(Self { stream, buf: Vec::with_capacity(INITIAL_BUFFER), pos: 0, closed: false, eof: false })
    }

    /// Whether a request may still be written: not closed, and no end of stream pending.
    fn usable(&mut self) -> bool {
        if self.closed {
            return false;
        }
        let mut probe = [0u8; 1];
        match self.stream.try_read(&mut probe) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
            // End of stream, an error, or bytes nobody asked for: not reusable.
            _ => {
                self.closed = true;
                false
            }
        }
    }

    /// Reads one response: its status and where its body lies (valid until the next read).
    async fn read_response(&mut self) -> anyhow::Result<(u16, Range<usize>)> {
        loop {
            if let Some(p) = parse_response(&mut self.buf[self.pos..], self.eof)? {
                let base = self.pos;
                self.pos += p.consumed;
                self.closed |= p.close;
                return Ok((p.status, base + p.body.start..base + p.body.end));
            }
            if self.eof {
                bail!("connection closed by the server mid-response");
            }
            if self.pos == self.buf.len() {
                self.buf.clear();
                self.pos = 0;
            } else if self.pos > 0 {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            if self.buf.len() > MAX_HEAD + MAX_BODY {
                bail!("response too large");
            }
            if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
                self.buf.reserve(READ_CHUNK);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                self.eof = true;
                self.closed = true;
            }
        }
    }

    fn bytes(&self, r: Range<usize>) -> &[u8] {
        &self.buf[r]
    }
}

/// Parses the response at the start of `buf`; `None` until it is complete. A chunked body is
/// joined in place (only once complete, so an incomplete one is never half rewritten). `eof`:
/// the stream ended, which completes a body delimited by the end of the stream.
fn parse_response(buf: &mut [u8], eof: bool) -> anyhow::Result<Option<Parsed>> {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            bail!("response head over {MAX_HEAD} bytes");
        }
        return Ok(None);
    };
    let head = &buf[..head_end];
    let mut lines = head.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(|b| *b == b' ')
        .nth(1)
        .and_then(|s| std::str::from_utf8(s).ok()?.parse::<u16>().ok())
        .with_context(|| format!("bad status line: {}", shorten(status_line)))?;
    let (mut length, mut chunked, mut close) = (None, false, status_line.starts_with(b"HTTP/1.0"));
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = std::str::from_utf8(value).ok().and_then(|v| v.parse::<usize>().ok());
            length =
                Some(n.filter(|n| *n <= MAX_BODY).with_context(|| format!("bad Content-Length: {}", shorten(value)))?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = value.split(|b| *b == b',').any(|v| v.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case(b"connection") {
            close = value.eq_ignore_ascii_case(b"close");
        }
    }
    let start = head_end + 4;
    let parsed = |body: Range<usize>, consumed: usize, close: bool| Some(Parsed { status, body, consumed, close });
    if chunked {
        return Ok(dechunk(buf, start)?.and_then(|(body, consumed)| parsed(body, consumed, close)));
    }
    if let Some(n) = length {
        return Ok(if buf.len() >= start + n { parsed(start..start + n, start + n, close) } else { None });
    }
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(parsed(start..start, start, close));
    }
    // Neither length nor chunks: the body runs to the end of the stream.
    Ok(if eof { parsed(start..buf.len(), buf.len(), true) } else { None })
}

/// A complete chunked body starting at `start`, joined in place: (body, bytes consumed).
fn dechunk(buf: &mut [u8], start: usize) -> anyhow::Result<Option<(Range<usize>, usize)>> {
    // First pass: is it all there? (chunk data ranges are recomputed by the second pass)
    let mut at = start;
    let mut total = 0usize;
    let end = loop {
        let Some(le) = find(&buf[at..], b"\r\n") else { return Ok(None) };
        let size_field = buf[at..at + le].split(|b| *b == b';').next().unwrap_or_default().trim_ascii();
        let size = std::str::from_utf8(size_field)
            .ok()
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .with_context(|| format!("bad chunk size: {}", shorten(size_field)))?;
        let data = at + le + 2;
        if size == 0 {
            // No trailers: CRLF; trailers: up to the blank line after them.
            if buf.len() < data + 2 {
                return Ok(None);
            }
            if &buf[data..data + 2] == b"\r\n" {
                break data + 2;
            }
            match find(&buf[data..], b"\r\n\r\n") {
                Some(i) => break data + i + 4,
                None => return Ok(None),
            }
        }
        total += size;
        if total > MAX_BODY {
            bail!("chunked body over {MAX_BODY} bytes");
        }
        if buf.len() < data + size + 2 {
            return Ok(None);
        }
        if &buf[data + size..data + size + 2] != b"\r\n" {
            bail!("chunk of {size} bytes not followed by CRLF");
        }
        at = data + size + 2;
    };
    // Second pass: move each chunk's data down to the end of the previous one.
    let (mut read, mut write) = (start, start);
    loop {
        let le = find(&buf[read..], b"\r\n").context("chunk size line vanished")?;
        let size_field = buf[read..read + le].split(|b| *b == b';').next().unwrap_or_default().trim_ascii();
        let size = std::str::from_utf8(size_field).ok().and_then(|s| usize::from_str_radix(s, 16).ok()).unwrap_or(0);
        if size == 0 {
            break;
        }
        let data = read + le + 2;
        buf.copy_within(data..data + size, write);
        write += size;
        read = data + size + 2;
    }
    Ok(Some((start..write, end)))
}

/// One Engine.IO polling session: its two connections and its requests, built once.
pub struct PollSession {
    addr: SocketAddr,
    get: HttpConn,
    post: Option<HttpConn>,
    /// `GET base&sid=… HTTP/1.1` with its headers.
    get_request: Vec<u8>,
    /// `POST base&sid=…` up to the blank line, without Content-Length.
    post_head: String,
    /// The POST carrying a pong, complete.
    pong_request: Vec<u8>,
}

impl PollSession {
    /// Opens the session and runs the setup (open, CONNECT, join) to its end.
    pub async fn setup(addr: SocketAddr, authority: &str, target: &Target) -> anyhow::Result<Self> {
        let mut get = HttpConn::connect(addr).await?;
        let handshake = format!("GET {} HTTP/1.1\r\nHost: {authority}\r\n\r\n", target.base);
        get.stream.write_all(handshake.as_bytes()).await.context("sending the handshake")?;
        let (status, body) = get.read_response().await.context("reading the handshake")?;
        if status != 200 {
            bail!("handshake refused: {status} {}", shorten(get.bytes(body)));
        }
        let mut h = Handshake::new(target);
        let mut out = Vec::new();
        let mut joined = feed(&mut h, get.bytes(body), &mut out)?;
        let sid = query_value(h.sid.as_deref().context("no open packet in the handshake response")?);
        let path = format!("{}&sid={sid}", target.base);
        let post_head =
            format!("POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: text/plain;charset=UTF-8\r\n");
        let mut session = Self {
            addr,
            get,
            post: None,
            get_request: format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\n\r\n").into_bytes(),
            pong_request: post_request(&post_head, sio::PONG),
            post_head,
        };
        for _ in 0..MAX_SETUP_POLLS {
            if !out.is_empty() {
                let payload = out.join(&sio::SEPARATOR);
                out.clear();
                let request = post_request(&session.post_head, &payload);
                session.post(&request).await?;
            }
            if joined {
                return Ok(session);
            }
            let body = session.poll().await?;
            joined = feed(&mut h, session.get.bytes(body), &mut out)?;
        }
        bail!("not joined after {MAX_SETUP_POLLS} polls")
    }

    /// One long-poll GET: the range of its payload in the GET connection's buffer.
    async fn poll(&mut self) -> anyhow::Result<Range<usize>> {
        self.send_get().await?;
        self.read_get().await
    }

    async fn send_get(&mut self) -> anyhow::Result<()> {
        if !self.get.usable() {
            self.get = HttpConn::connect(self.addr).await?;
        }
        self.get.stream.write_all(&self.get_request).await.context("sending a poll")
    }

    async fn read_get(&mut self) -> anyhow::Result<Range<usize>> {
        let (status, body) = self.get.read_response().await.context("reading a poll")?;
        if status != 200 {
            bail!("poll answered {status}: {}", shorten(self.get.bytes(body)));
        }
        Ok(body)
    }

    /// Sends one POST; a pooled connection the server closed meanwhile is replaced once.
    async fn post(&mut self, request: &[u8]) -> anyhow::Result<()> {
        for attempt in 0..2 {
            let pooled = self.post.take().and_then(|mut c| c.usable().then_some(c));
            let mut conn = match pooled {
                Some(c) => c,
                None => HttpConn::connect(self.addr).await?,
            };
            let sent = conn.stream.write_all(request).await;
            let answer = match sent {
                Ok(()) => conn.read_response().await,
                Err(e) => Err(e.into()),
            };
            match answer {
                Ok((200, _)) => {
                    if !conn.closed {
                        self.post = Some(conn);
                    }
                    return Ok(());
                }
                Ok((status, body)) => bail!("POST answered {status}: {}", shorten(conn.bytes(body))),
                // Closed by the server as the request went out: nothing was answered; resend.
                Err(_) if attempt == 0 && conn.buf.len() == conn.pos => continue,
                Err(e) => return Err(e.context("POST")),
            }
        }
        bail!("POST failed twice")
    }

    /// The receive loop of a joined session; returns why it ended.
    pub async fn receive(mut self, target: &Target, shared: &Shared) -> String {
        let mut last = (0u64, 0u64);
        if let Err(e) = self.send_get().await {
            return format!("{e:#}");
        }
        loop {
            let body = match self.read_get().await {
                Ok(b) => b,
                Err(e) => return format!("{e:#}"),
            };
            // One clock reading per poll: its packets arrived together.
            let now = now_us();
            let mut pong = false;
            for packet in sio::packets(self.get.bytes(body)) {
                match target.classify(packet) {
                    Seen::Delivery(seq, sent) => shared.delivered(seq, sent, now, &mut last),
                    Seen::Reply(_) => pong = true,
                    Seen::End(why) => return why,
                    Seen::Note(what) => shared.note(what),
                    Seen::Nothing => {}
                }
            }
            // The next poll goes out first: the pong must not delay it.
            if let Err(e) = self.send_get().await {
                return format!("{e:#}");
            }
            if pong {
                shared.pings.set(shared.pings.get() + 1);
                let request = std::mem::take(&mut self.pong_request);
                let sent = self.post(&request).await;
                self.pong_request = request;
                if let Err(e) = sent {
                    return format!("{e:#}");
                }
            }
        }
    }
}

/// Feeds every packet of a payload to the handshake; `Ok(true)` once joined.
fn feed(h: &mut Handshake<'_>, payload: &[u8], out: &mut Vec<Vec<u8>>) -> anyhow::Result<bool> {
    let mut joined = false;
    for packet in sio::packets(payload) {
        joined |= h.on_packet(packet, out)?;
    }
    Ok(joined)
}

fn post_request(head: &str, payload: &[u8]) -> Vec<u8> {
    let mut request = format!("{head}Content-Length: {}\r\n\r\n", payload.len()).into_bytes();
    request.extend_from_slice(payload);
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &[u8], eof: bool) -> (Option<Parsed>, Vec<u8>) {
        let mut buf = raw.to_vec();
        let p = parse_response(&mut buf, eof).unwrap();
        (p, buf)
    }

    #[test]
    fn content_length_bodies() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 4\r\n\r\n2\x1e40extra";
        let (p, buf) = parse(raw, false);
        let p = p.unwrap();
        assert_eq!((p.status, &buf[p.body.clone()], p.close), (200, &b"2\x1e40"[..], false));
        assert_eq!(p.consumed, raw.len() - b"extra".len());
        assert_eq!(parse(&raw[..raw.len() - 7], false).0, None);
        assert_eq!(parse(b"HTTP/1.1 200 OK\r\nContent-Le", false).0, None);
    }

    #[test]
    fn chunked_bodies_are_joined_in_place_once_complete() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;x=y\r\n42[\r\n2\r\n1]\r\n0\r\n\r\nNEXT";
        let (p, buf) = parse(raw, false);
        let p = p.unwrap();
        assert_eq!((&buf[p.body.clone()], p.close, p.consumed), (&b"42[1]"[..], true, raw.len() - 4));
        // Every incomplete prefix is reported incomplete and left as it was.
        for cut in raw.len() - 30..raw.len() - 4 {
            let (p, buf) = parse(&raw[..cut], false);
            assert_eq!((p, &buf[..]), (None, &raw[..cut]), "cut at {cut}");
        }
        let trailers = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: 1\r\n\r\n";
        let (p, buf) = parse(trailers, false);
        let p = p.unwrap();
        assert_eq!((&buf[p.body.clone()], p.consumed), (&b"a"[..], trailers.len()));
    }

    #[test]
    fn bodies_to_the_end_of_the_stream_and_bodiless_statuses() {
        let raw = b"HTTP/1.0 200 OK\r\n\r\nok";
        assert_eq!(parse(raw, false).0, None);
        let (p, buf) = parse(raw, true);
        let p = p.unwrap();
        assert_eq!((&buf[p.body.clone()], p.close), (&b"ok"[..], true));
        let p = parse(b"HTTP/1.1 204 No Content\r\n\r\n", false).0.unwrap();
        assert_eq!((p.status, p.body.len()), (204, 0));
    }

    #[test]
    fn malformed_responses_are_errors() {
        for raw in [
            &b"HTTP/1.1 abc OK\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n",
        ] {
            assert!(parse_response(&mut raw.to_vec(), false).is_err(), "{}", String::from_utf8_lossy(raw));
        }
        assert!(parse_response(&mut vec![b'x'; MAX_HEAD + 1], false).is_err());
    }
}
