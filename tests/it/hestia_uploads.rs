//! Hestia's pictures (issue 16, item 3 and its bad-input list): multipart uploads of each type
//! served back byte for byte with the right headers, replaced and deleted pictures' files
//! removed, and every hostile upload refused in `{"error": …}`: lies about the type, truncated
//! files, a decompression bomb, a body over the cap (413 while it streams), a path in the file
//! name, traversal in static paths, `http:`/`javascript:` URLs, and a flood past the limit.

use std::time::Duration;

use hyper::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::bodies::head_only;
use crate::support::images::{self, BOUNDARY, Part, multipart};
use crate::support::{TestServer, spawn_server, spawn_with};

async fn token(server: &TestServer, name: &str) -> String {
    let body = json!({"username": name, "password": "password-123"});
    let (s, b) = server.http().json(Method::POST, "/auth/register", Some(body), None).await;
    assert_eq!(s, 201, "{b}");
    b["token"].as_str().unwrap().to_owned()
}

/// `PATCH path` with a multipart body; status and JSON answer.
async fn patch_form(server: &TestServer, token: &str, path: &str, parts: &[Part<'_>]) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let headers = [("authorization", auth.as_str()), ("content-type", content_type.as_str())];
    let (status, _, body) = server.http().raw(Method::PATCH, path, multipart(parts), &headers).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

async fn upload(server: &TestServer, token: &str, kind: &str, bytes: &[u8], file_name: &str) -> (u16, Value) {
    let (path, field) = match kind {
        "avatar" => ("/users/profile-picture", "avatar"),
        _ => ("/users/profile-banner", "banner"),
    };
    let part = Part::File { name: field, file_name, content_type: "image/png", bytes };
    patch_form(server, token, path, &[part]).await
}

/// The path part of an absolute picture URL of this server.
fn local_path(server: &TestServer, url: &Value) -> String {
    let url = url.as_str().unwrap_or_else(|| panic!("not a URL: {url}"));
    url.strip_prefix(&format!("http://{}", server.addr)).unwrap_or_else(|| panic!("not absolute: {url}")).to_owned()
}

/// GET with status, headers and raw bytes.
async fn fetch(server: &TestServer, path: &str) -> (u16, hyper::HeaderMap, bytes::Bytes) {
    server.http().raw(Method::GET, path, Vec::new(), &[]).await
}

fn assert_error(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
}

#[tokio::test]
async fn each_type_is_served_back_byte_for_byte_with_its_type_and_hardening() {
    let server = spawn_server().await;
    let me = token(&server, "pictures").await;
    let cases = [
        (images::png(48, 32), "image/png", ".png"),
        (images::jpeg(48, 32), "image/jpeg", ".jpg"),
        (images::webp(48, 32), "image/webp", ".webp"),
        (images::gif(48, 32), "image/gif", ".gif"),
    ];
    for (bytes, content_type, ext) in &cases {
        // The declared type is a lie every time (image/png): only the content counts.
        let (s, user) = upload(&server, &me, "avatar", bytes, "photo.bin").await;
        assert_eq!(s, 200, "{content_type}: {user}");
        assert_eq!(user["username"], "pictures");
        let path = local_path(&server, &user["profilePictureUrl"]);
        assert!(path.starts_with("/uploads/avatars/") && path.ends_with(ext), "{path}");
        let (s, headers, body) = fetch(&server, &path).await;
        assert_eq!(s, 200, "{path}");
        assert_eq!(&body[..], &bytes[..], "{content_type} comes back as it was sent");
        assert_eq!(headers["content-type"], *content_type);
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers["cache-control"].to_str().unwrap().contains("max-age="), "{headers:?}");
        assert!(headers["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
        assert_eq!(headers["access-control-allow-origin"], "*");
    }
    let banner = images::jpeg(300, 100);
    let (s, user) = upload(&server, &me, "banner", &banner, "banner.jpg").await;
    assert_eq!(s, 200, "{user}");
    let path = local_path(&server, &user["profileBannerUrl"]);
    assert!(path.starts_with("/uploads/banners/"), "{path}");
    assert_eq!(&fetch(&server, &path).await.2[..], &banner[..]);
    // The avatar set last is still there, and GET /users/me agrees.
    let (s, me_now) = server.http().json(Method::GET, "/users/me", None, Some(&me)).await;
    assert_eq!(s, 200);
    assert_eq!(me_now["profileBannerUrl"], user["profileBannerUrl"]);
    assert_eq!(me_now["profilePictureUrl"], user["profilePictureUrl"]);
}

#[tokio::test]
async fn a_replaced_picture_and_a_deleted_accounts_pictures_are_removed() {
    let server = spawn_server().await;
    let me = token(&server, "replacer").await;
    let (_, first) = upload(&server, &me, "avatar", &images::png(8, 8), "a.png").await;
    let first = local_path(&server, &first["profilePictureUrl"]);
    let (_, second) = upload(&server, &me, "avatar", &images::gif(8, 8), "b.gif").await;
    let second = local_path(&server, &second["profilePictureUrl"]);
    assert_ne!(first, second);
    assert_eq!(fetch(&server, &first).await.0, 404, "the replaced file is gone");
    assert!(!server.dir.path().join(&first[1..]).exists());
    assert_eq!(fetch(&server, &second).await.0, 200);

    // A URL replaces an upload too, and removes its file.
    let url = "https://cdn.example.com/me.png";
    let (s, user) = server
        .http()
        .json(Method::PATCH, "/users/profile-picture", Some(json!({"profilePictureUrl": url})), Some(&me))
        .await;
    assert_eq!(s, 200, "{user}");
    assert_eq!(user["profilePictureUrl"], url, "a client URL is answered unchanged");
    assert_eq!(fetch(&server, &second).await.0, 404);

    let (_, avatar) = upload(&server, &me, "avatar", &images::webp(8, 8), "c.webp").await;
    let avatar = local_path(&server, &avatar["profilePictureUrl"]);
    let (_, banner) = upload(&server, &me, "banner", &images::png(20, 8), "d.png").await;
    let banner = local_path(&server, &banner["profileBannerUrl"]);
    let (s, _) = server.http().json(Method::DELETE, "/users/me", None, Some(&me)).await;
    assert_eq!(s, 204);
    for path in [avatar, banner] {
        assert_eq!(fetch(&server, &path).await.0, 404, "{path} went with the account");
        assert!(!server.dir.path().join(&path[1..]).exists(), "{path}");
    }
}

#[tokio::test]
async fn lies_truncation_and_bombs_are_400_and_leave_nothing_behind() {
    let server = spawn_server().await;
    let me = token(&server, "hostile").await;
    let png = images::png(64, 64);
    let mut appended = png.clone();
    appended.extend_from_slice(b"<script>alert(1)</script>");
    let html = b"<!doctype html><html><script>alert(document.cookie)</script></html>".to_vec();
    let cases: [(&str, Vec<u8>); 6] = [
        ("html named .png, declared image/png", html),
        ("svg", b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>".to_vec()),
        ("truncated png", png[..png.len() / 2].to_vec()),
        ("truncated jpeg", images::jpeg(64, 64)[..300].to_vec()),
        ("data after the image", appended),
        ("100000x100000 png", images::png_claiming(100_000)),
    ];
    for (what, bytes) in cases {
        let (s, body) = upload(&server, &me, "avatar", &bytes, "evil.png").await;
        assert_error(s, &body, 400);
        assert!(!body.to_string().contains("alert"), "{what}: {body}");
    }
    let (s, body) = upload(&server, &me, "avatar", &images::png_claiming(100_000), "bomb.png").await;
    assert_eq!((s, body["error"].as_str().unwrap()), (400, "Image dimensions 100000x100000 exceed 8192x8192"));
    // No picture was set, no file kept.
    let (_, user) = server.http().json(Method::GET, "/users/me", None, Some(&me)).await;
    assert_eq!(user["profilePictureUrl"], Value::Null, "{user}");
    for dir in ["avatars", "banners", "incoming"] {
        let left: Vec<_> = std::fs::read_dir(server.dir.path().join("uploads").join(dir)).unwrap().collect();
        assert!(left.is_empty(), "{dir}: {left:?}");
    }
    assert_eq!(server.http().get("/health").await.0, 200);
}

#[tokio::test]
async fn a_bomb_is_refused_from_its_header_before_the_rest_of_the_body() {
    let server = spawn_server().await;
    let me = token(&server, "bomber").await;
    // The header of a 100,000 × 100,000 PNG, then a body that never comes.
    let bomb = images::png_claiming(100_000);
    let mut start = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"b.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    start.extend_from_slice(&bomb[..33]);
    let head = format!(
        "PATCH /users/profile-picture HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {me}\r\ncontent-type: multipart/form-data; boundary={BOUNDARY}\r\ncontent-length: 4000000\r\n\r\n"
    );
    // The rest of the form is waited for only while it keeps coming (a second here): the
    // refusal needs nothing more than those first bytes.
    let (answer, _) = head_only(&server, &head, &start).await;
    assert_eq!(answer.status, 400, "{}", answer.head);
    assert_eq!(answer.body["error"], "Image dimensions 100000x100000 exceed 8192x8192");
    let left: Vec<_> = std::fs::read_dir(server.dir.path().join("uploads/incoming")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_body_past_the_cap_is_cut_off_with_413_while_it_streams() {
    let server = spawn_with(|c| c.uploads.avatar_max_bytes = 1024 * 1024).await;
    let me = token(&server, "streamer").await;
    // A declared length past the cap is refused before a byte of the body.
    let head = format!(
        "PATCH /users/profile-picture HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {me}\r\ncontent-type: multipart/form-data; boundary={BOUNDARY}\r\ncontent-length: 50000000\r\n\r\n"
    );
    let (answer, _) = head_only(&server, &head, b"").await;
    assert_eq!(answer.status, 413, "{}", answer.head);
    assert!(answer.body["error"].as_str().unwrap().starts_with("File too large"), "{}", answer.body);

    // Chunked, no length: 64 MiB offered in 64 KiB chunks, each written only after the last
    // went out. The 413 arrives while most of it is still unsent.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "PATCH /users/profile-picture HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {me}\r\ncontent-type: multipart/form-data; boundary={BOUNDARY}\r\ntransfer-encoding: chunked\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut part = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"big.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    part.extend_from_slice(&images::png(64, 64));
    let (mut reader, mut writer) = stream.into_split();
    let offered: usize = 64 * 1024 * 1024;
    let sender = tokio::spawn(async move {
        let mut sent = 0usize;
        let mut chunk = part;
        while sent < offered {
            chunk.resize(64 * 1024, 0);
            let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
            if writer.write_all(&framed).await.is_err() {
                break;
            }
            sent += chunk.len();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        sent
    });
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = reader.read(&mut byte).await.unwrap();
            assert!(n > 0, "closed without an answer");
            buf.extend_from_slice(&byte[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "no answer while the body streamed");
    let head = String::from_utf8_lossy(&buf).to_lowercase();
    assert!(head.starts_with("http/1.1 413"), "{head}");
    let sent = sender.await.unwrap();
    assert!(sent < offered / 4, "the answer came after {sent} of {offered} bytes");
    assert_eq!(server.http().get("/health").await.0, 200);
}

#[tokio::test]
async fn a_path_in_the_file_name_is_ignored() {
    let server = spawn_server().await;
    let me = token(&server, "traveller").await;
    for name in ["../../../../jwt_secret", "..\\..\\evil.png", "/etc/passwd", "a/../../x.png", "%2e%2e%2fx.png"] {
        let (s, user) = upload(&server, &me, "avatar", &images::png(4, 4), name).await;
        assert_eq!(s, 200, "{name}: {user}");
        let path = local_path(&server, &user["profilePictureUrl"]);
        let file = path.rsplit('/').next().unwrap();
        assert!(file.len() == 36 && file.ends_with(".png") && !file.contains(".."), "{name}: {path}");
    }
    assert!(!server.dir.path().join("evil.png").exists());
    assert!(!server.dir.path().join("uploads/x.png").exists());
    let secret = std::fs::read(server.dir.path().join("jwt_secret")).unwrap();
    assert!(!secret.starts_with(b"\x89PNG"), "nothing was written outside the uploads");
}

#[tokio::test]
async fn static_paths_serve_only_names_the_server_chose() {
    let server = spawn_server().await;
    let me = token(&server, "static").await;
    let (_, user) = upload(&server, &me, "avatar", &images::png(4, 4), "a.png").await;
    let good = local_path(&server, &user["profilePictureUrl"]);
    let name = good.rsplit('/').next().unwrap().to_owned();
    let stem = name.trim_end_matches(".png");
    let refused = [
        "/uploads/avatars/../jwt_secret".to_owned(),
        "/uploads/avatars/..%2fjwt_secret".to_owned(),
        "/uploads/avatars/%2e%2e/%2e%2e/jwt_secret".to_owned(),
        "/uploads/avatars/%2E%2E%2Fjwt_secret".to_owned(),
        "/uploads/avatars/..\\..\\jwt_secret".to_owned(),
        "/uploads/avatars/%5c..%5cjwt_secret".to_owned(),
        format!("/uploads/avatars/{name}%00.png"),
        format!("/uploads/avatars/{stem}%00.png"),
        "/uploads/avatars//etc/passwd".to_owned(),
        "/uploads//etc/passwd".to_owned(),
        format!("/uploads/banners/{name}"),
        format!("/uploads/avatars/{}", name.to_uppercase()),
        format!("/uploads/avatars/{stem}.svg"),
        format!("/uploads/other/{name}"),
        format!("/uploads/avatars/{name}/"),
        "/uploads/avatars/".to_owned(),
        "/uploads/".to_owned(),
    ];
    for path in &refused {
        // Raw, so no client tidies the path first.
        let (answer, _) = head_only(&server, &format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n"), b"").await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.head);
        assert_eq!(answer.body, json!({"error": "Not found"}), "{path}");
    }
    assert_eq!(fetch(&server, &good).await.0, 200);
}

#[tokio::test]
async fn picture_urls_must_be_https() {
    let server = spawn_server().await;
    let me = token(&server, "linker").await;
    for url in ["http://example.com/a.png", "javascript:alert(1)", "data:image/png;base64,AAAA", "ftp://x/y.png", ""] {
        let (s, body) = server
            .http()
            .json(Method::PATCH, "/users/profile-picture", Some(json!({"profilePictureUrl": url})), Some(&me))
            .await;
        assert_error(s, &body, 400);
        let (s, body) =
            patch_form(&server, &me, "/users/profile-banner", &[Part::Text { name: "profileBannerUrl", value: url }])
                .await;
        assert_error(s, &body, 400);
    }
    let long = format!("https://example.com/{}", "a".repeat(2048));
    let (s, body) = server
        .http()
        .json(Method::PATCH, "/users/profile-banner", Some(json!({"profileBannerUrl": long})), Some(&me))
        .await;
    assert_error(s, &body, 400);
    let url = "https://example.com/banner.webp";
    let (s, user) =
        patch_form(&server, &me, "/users/profile-banner", &[Part::Text { name: "profileBannerUrl", value: url }]).await;
    assert_eq!(s, 200, "{user}");
    assert_eq!(user["profileBannerUrl"], url);
    // Neither a file nor a URL.
    let (s, body) =
        patch_form(&server, &me, "/users/profile-picture", &[Part::Text { name: "other", value: "x" }]).await;
    assert_eq!((s, body), (400, json!({"error": "profilePictureUrl or avatar file is required"})));
    for wrong in [json!({}), json!({"profilePictureUrl": 5}), json!({"profilePictureUrl": null})] {
        let (s, body) = server.http().json(Method::PATCH, "/users/profile-picture", Some(wrong), Some(&me)).await;
        assert_eq!((s, body), (400, json!({"error": "profilePictureUrl or avatar file is required"})));
    }
    let (s, body) = server
        .http()
        .request(
            Method::PATCH,
            "/users/profile-picture",
            b"{\"profilePictureUrl\":",
            &[("authorization", &format!("Bearer {me}"))],
        )
        .await;
    assert_eq!((s, body), (400, json!({"error": "Request body must be valid JSON."})));
    // A URL-encoded form works as Hestia's did.
    let auth = format!("Bearer {me}");
    let form = "profilePictureUrl=https%3A%2F%2Fexample.com%2Fa.png".as_bytes().to_vec();
    let headers = [("authorization", auth.as_str()), ("content-type", "application/x-www-form-urlencoded")];
    let (s, _, body) = server.http().raw(Method::PATCH, "/users/profile-picture", form, &headers).await;
    let user: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((s, &user["profilePictureUrl"]), (200, &json!("https://example.com/a.png")));
}

#[tokio::test]
async fn the_token_is_checked_before_the_body_is_read() {
    let server = spawn_server().await;
    for (auth, status) in [("", 401), ("authorization: Bearer forged.token.here\r\n", 403)] {
        let head = format!(
            "PATCH /users/profile-picture HTTP/1.1\r\nhost: x\r\ncontent-type: multipart/form-data; boundary={BOUNDARY}\r\ncontent-length: 4000000\r\n{auth}\r\n"
        );
        let (answer, _) = head_only(&server, &head, b"--").await;
        assert_eq!(answer.status, status, "{}", answer.head);
        assert!(answer.body["error"].is_string());
    }
}

#[tokio::test]
async fn flooding_uploads_past_the_limit_gets_429() {
    let server = spawn_with(|c| c.uploads.per_account_per_minute = 3).await;
    let me = token(&server, "flooder").await;
    let other = token(&server, "bystander").await;
    for _ in 0..3 {
        assert_eq!(upload(&server, &me, "avatar", &images::png(4, 4), "a.png").await.0, 200);
    }
    let auth = format!("Bearer {me}");
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let body = multipart(&[Part::File {
        name: "avatar",
        file_name: "a.png",
        content_type: "image/png",
        bytes: &images::png(4, 4),
    }]);
    let headers = [("authorization", auth.as_str()), ("content-type", content_type.as_str())];
    let (s, headers, body) = server.http().raw(Method::PATCH, "/users/profile-picture", body, &headers).await;
    assert_eq!(s, 429);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "Too many requests, please try again later.");
    let retry = body["retryAfter"].as_u64().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    assert_eq!(headers["retry-after"].to_str().unwrap(), retry.to_string());
    // Another account is not held back.
    assert_eq!(upload(&server, &other, "banner", &images::png(4, 4), "a.png").await.0, 200);
}
