//! A deliberately small WebSocket client: hand-written upgrade request, in-place frame parsing of
//! the server's (unmasked) frames straight out of one read buffer, masked writes for the few
//! frames a subscriber sends. Per delivered message the hot path does one bounds-checked header
//! parse and one substring search — no allocation, no JSON parsing — so that the generator, not
//! pinned to more than one core, stays cheaper than the server it measures.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const OP_CONT: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

const MAX_MESSAGE: usize = 16 << 20;
const READ_CHUNK: usize = 4096;
const INITIAL_BUFFER: usize = 2048;

/// Where a complete message's payload lies.
#[derive(Debug, Clone, Copy)]
pub enum Loc {
    Buf(usize, usize),
    Frag,
}

pub struct WsConn {
    stream: TcpStream,
    buf: Vec<u8>,
    pos: usize,
    frag: Vec<u8>,
    frag_op: Option<u8>,
}

impl WsConn {
    /// TCP connect plus the HTTP/1.1 upgrade; fails unless the server answers 101.
    pub async fn connect(addr: SocketAddr, authority: &str, path: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true).context("TCP_NODELAY")?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
            base64(&rand::random::<[u8; 16]>())
        );
        let mut conn =
            Self { stream, buf: Vec::with_capacity(INITIAL_BUFFER), pos: 0, frag: Vec::new(), frag_op: None };
        conn.stream.write_all(request.as_bytes()).await.context("sending the upgrade request")?;
        let end = loop {
            if let Some(i) = find(&conn.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if conn.buf.len() > 16 * 1024 {
                bail!("upgrade response headers too large");
            }
            conn.buf.reserve(1024);
            if conn.stream.read_buf(&mut conn.buf).await.context("reading the upgrade response")? == 0 {
                bail!("connection closed during the upgrade");
            }
        };
        let head = String::from_utf8_lossy(&conn.buf[..end]);
        let status = head.lines().next().unwrap_or_default();
        if status.split(' ').nth(1) != Some("101") {
            bail!("upgrade refused: {status}");
        }
        conn.pos = end;
        Ok(conn)
    }

    /// Reads more bytes (compacting the buffer first). `Ok(0)` is end of stream.
    pub async fn fill(&mut self) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 0 && self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
            self.buf.reserve(READ_CHUNK);
        }
        self.stream.read_buf(&mut self.buf).await
    }

    /// The next complete frame in the buffer: (opcode, fin, payload start, payload end).
    fn poll_frame(&mut self) -> anyhow::Result<Option<(u8, bool, usize, usize)>> {
        let Some((op, fin, start, end)) = take_frame(&mut self.buf[self.pos..])? else { return Ok(None) };
        let (start, end) = (self.pos + start, self.pos + end);
        self.pos = end;
        Ok(Some((op, fin, start, end)))
    }

    /// The next complete message (data messages reassembled, control frames as they come).
    pub fn poll_msg(&mut self) -> anyhow::Result<Option<(u8, Loc)>> {
        loop {
            let Some((op, fin, start, end)) = self.poll_frame()? else { return Ok(None) };
            if op >= OP_CLOSE {
                return Ok(Some((op, Loc::Buf(start, end))));
            }
            if op != OP_CONT && fin && self.frag_op.is_none() {
                return Ok(Some((op, Loc::Buf(start, end))));
            }
            if op != OP_CONT {
                self.frag.clear();
                self.frag_op = Some(op);
            }
            self.frag.extend_from_slice(&self.buf[start..end]);
            if self.frag.len() > MAX_MESSAGE {
                bail!("fragmented message too large");
            }
            if fin {
                return Ok(Some((self.frag_op.take().unwrap_or(OP_TEXT), Loc::Frag)));
            }
        }
    }

    pub fn bytes(&self, loc: Loc) -> &[u8] {
        match loc {
            Loc::Buf(s, e) => &self.buf[s..e],
            Loc::Frag => &self.frag,
        }
    }

    /// Sends one masked frame.
    pub async fn send(&mut self, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | opcode);
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let key: [u8; 4] = rand::random();
        frame.extend_from_slice(&key);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i & 3]));
        self.stream.write_all(&frame).await
    }

    /// Waits for the next text message (answering pings); an error on close or end of stream.
    pub async fn next_text(&mut self) -> anyhow::Result<String> {
        loop {
            while let Some((op, loc)) = self.poll_msg()? {
                match op {
                    OP_TEXT => return Ok(String::from_utf8_lossy(self.bytes(loc)).into_owned()),
                    OP_PING => {
                        let payload = self.bytes(loc).to_vec();
                        self.send(OP_PONG, &payload).await?;
                    }
                    OP_CLOSE => bail!("server closed: {}", describe_close(self.bytes(loc))),
                    _ => {}
                }
            }
            if self.fill().await? == 0 {
                bail!("connection closed by the server");
            }
        }
    }
}

/// The complete frame at the start of `buf`, if there is one: (opcode, fin, payload start,
/// payload end). A masked payload is unmasked in place. Also the floor server's parser.
pub fn take_frame(buf: &mut [u8]) -> anyhow::Result<Option<(u8, bool, usize, usize)>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    let masked = b1 & 0x80 != 0;
    let (len, mut header) = match b1 & 0x7f {
        126 if buf.len() >= 4 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b), 10)
        }
        126 | 127 => return Ok(None),
        n => (u64::from(n), 2),
    };
    let len = usize::try_from(len).ok().filter(|l| *l <= MAX_MESSAGE).context("frame too large")?;
    let mask_at = header;
    if masked {
        header += 4;
    }
    if buf.len() < header + len {
        return Ok(None);
    }
    let (start, end) = (header, header + len);
    if masked {
        let key = [buf[mask_at], buf[mask_at + 1], buf[mask_at + 2], buf[mask_at + 3]];
        for (i, b) in buf[start..end].iter_mut().enumerate() {
            *b ^= key[i & 3];
        }
    }
    Ok(Some((b0 & 0x0f, b0 & 0x80 != 0, start, end)))
}

/// "code reason" of a close frame's payload.
pub fn describe_close(payload: &[u8]) -> String {
    if payload.len() < 2 {
        return "no code".to_owned();
    }
    let code = u16::from_be_bytes([payload[0], payload[1]]);
    format!("{code} {}", String::from_utf8_lossy(&payload[2..]))
}

/// First position of `needle` in `hay`.
#[inline]
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(i) = hay[from..].iter().position(|&b| b == first) {
        let at = from + i;
        if hay[at + 1..].starts_with(rest) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0u8; 16]).len(), 24);
    }

    #[test]
    fn find_substrings() {
        assert_eq!(find(b"abc~SB12", b"~SB"), Some(3));
        assert_eq!(find(b"~S~SB", b"~SB"), Some(2));
        assert_eq!(find(b"~S", b"~SB"), None);
    }
}
