//! Request framing that proxies and servers can read differently (request smuggling, RFC 9112
//! §6): every ambiguous form is refused with 400 and the connection closed, and a request with
//! both `Content-Length` and `Transfer-Encoding` is read by the chunked framing alone and closes
//! the connection, so nothing after it on the socket is ever taken for a second request.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::spawn_server;

/// Everything the server sends before it closes (within 5 s).
async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the connection stayed open after {:?}", String::from_utf8_lossy(request));
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn ambiguous_framing_is_refused_and_the_connection_closed() {
    let server = spawn_server().await;
    let tail = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    for head in [
        "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
        "POST /auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
        "POST /auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
        "POST /auth/login HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nabcd",
        "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\n",
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
    ] {
        let answer = exchange(server.addr, format!("{head}{tail}").as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{head:?} -> {answer}");
        assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{head:?}: a second request was read: {answer}");
    }
    // Content-Length with Transfer-Encoding: the chunked body is the body (here an empty one,
    // so the login is refused as not JSON), and the connection ends with that answer.
    let head =
        "POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    let answer = exchange(server.addr, format!("{head}{tail}").as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    assert_eq!(answer.matches("HTTP/1.1").count(), 1, "the smuggled GET was served: {answer}");
    assert_eq!(server.http().get("/health").await.0, 200);
}
