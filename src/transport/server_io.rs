//! The TCP stream the server hands hyper for one connection. The server takes an idle
//! keep-alive connection back from hyper (hyper's read and write buffers, 16 KiB, are freed
//! until the client speaks again), and a WebSocket upgrade takes the stream itself.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A connection's stream, with the bytes read ahead of hyper.
pub struct ServerIo {
    stream: TcpStream,
    /// Read before hyper got the stream: the start of the next request, given to hyper first.
    pre: Bytes,
    /// Set when the server takes the connection back: hyper's closing shutdown is skipped, so
    /// the client keeps its keep-alive connection.
    keep_open: Arc<AtomicBool>,
}

impl ServerIo {
    pub fn new(stream: TcpStream, pre: Bytes, keep_open: Arc<AtomicBool>) -> Self {
        Self { stream, pre, keep_open }
    }

    /// The stream, and the bytes read from it that nobody consumed yet: hyper's unread
    /// `read_buf` (read first), then what hyper had not been given. Copied: a slice of hyper's
    /// read buffer, even an empty one, would keep all of its 8 KiB alive.
    pub fn into_parts(self, read_buf: Bytes) -> (TcpStream, Bytes) {
        let len = read_buf.len() + self.pre.len();
        if len == 0 {
            return (self.stream, Bytes::new());
        }
        let mut rest = BytesMut::with_capacity(len);
        rest.extend_from_slice(&read_buf);
        rest.extend_from_slice(&self.pre);
        (self.stream, rest.freeze())
    }
}

impl AsyncRead for ServerIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.pre.is_empty() {
            let n = this.pre.len().min(buf.remaining());
            buf.put_slice(&this.pre.split_to(n));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ServerIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.keep_open.load(Ordering::Acquire) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_read_ahead_come_first_and_leftovers_keep_their_order() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        client.write_all(b" world").await.unwrap();
        let mut io = ServerIo::new(server, Bytes::from_static(b"hello"), Arc::default());
        let mut first = [0u8; 3];
        io.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"hel");
        let (_, rest) = io.into_parts(Bytes::from_static(b"<buffered>"));
        assert_eq!(&rest[..], b"<buffered>lo");
    }

    #[tokio::test]
    async fn a_kept_connection_is_not_shut_down() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let keep = Arc::new(AtomicBool::new(true));
        let mut io = ServerIo::new(server, Bytes::new(), keep.clone());
        io.shutdown().await.unwrap();
        io.write_all(b"still open").await.unwrap();
        let mut got = [0u8; 10];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"still open");
        keep.store(false, Ordering::Release);
        io.shutdown().await.unwrap();
        assert_eq!(client.read(&mut got).await.unwrap(), 0, "shut down once not kept");
    }
}
