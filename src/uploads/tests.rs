//! Small generated images of each type through the whole path (stream, sniff, check, store),
//! and each way a file can be refused.

use std::borrow::Cow;

use super::*;

/// An RGBA gradient, so the encoders have something to compress.
fn pixels(width: u32, height: u32, channels: usize) -> Vec<u8> {
    (0..width * height)
        .flat_map(|i| [(i % 251) as u8, (i / 7 % 253) as u8, (i * 3 % 256) as u8, 255].into_iter().take(channels))
        .collect()
}

pub(crate) fn png_image(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&pixels(width, height, 4)).unwrap();
    writer.finish().unwrap();
    out
}

/// An APNG of `frames` frames, each a full 16×16 image.
fn apng_image(frames: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, 16, 16);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_animated(frames, 0).unwrap();
    let mut writer = encoder.write_header().unwrap();
    for _ in 0..frames {
        writer.write_image_data(&pixels(16, 16, 4)).unwrap();
    }
    writer.finish().unwrap();
    out
}

fn gif_image(width: u16, height: u16, frames: usize) -> Vec<u8> {
    let palette: Vec<u8> = (0..=255u8).flat_map(|i| [i, 255 - i, i / 2]).collect();
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, width, height, &palette).unwrap();
        for f in 0..frames {
            let indices: Vec<u8> =
                (0..usize::from(width) * usize::from(height)).map(|i| ((i + f) % 256) as u8).collect();
            let frame = gif::Frame { width, height, buffer: Cow::Owned(indices), ..Default::default() };
            encoder.write_frame(&frame).unwrap();
        }
    }
    out
}

fn webp_image(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image_webp::WebPEncoder::new(&mut out)
        .encode(&pixels(width, height, 4), width, height, image_webp::ColorType::Rgba8)
        .unwrap();
    out
}

fn jpeg_image(width: u16, height: u16) -> Vec<u8> {
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 85)
        .encode(&pixels(u32::from(width), u32::from(height), 3), width, height, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

fn service(dir: &Path) -> Uploads {
    Uploads::open(dir, UploadsConfig::default()).unwrap()
}

/// Streams `bytes` in uneven chunks, as a network would.
async fn upload(uploads: &Uploads, kind: PictureKind, bytes: &[u8]) -> Result<StoredPicture, UploadError> {
    let mut incoming = uploads.begin(kind).await?;
    for chunk in bytes.chunks(1000) {
        incoming.write(chunk).await?;
    }
    incoming.finish().await
}

fn incoming_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("uploads/incoming")).unwrap().next().is_none()
}

/// Dropped uploads remove their file on a blocking thread; give it a moment.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

#[tokio::test]
async fn each_type_is_stored_as_sent_under_a_server_chosen_name() {
    let dir = tempfile::tempdir().unwrap();
    let uploads = service(dir.path());
    let cases = [
        (png_image(40, 30), ImageType::Png, "image/png"),
        (jpeg_image(40, 30), ImageType::Jpeg, "image/jpeg"),
        (webp_image(40, 30), ImageType::WebP, "image/webp"),
        (gif_image(40, 30, 3), ImageType::Gif, "image/gif"),
    ];
    for (bytes, ty, content_type) in cases {
        let stored = upload(&uploads, PictureKind::Banner, &bytes).await.unwrap_or_else(|e| panic!("{ty:?}: {e}"));
        assert_eq!(stored.image_type, ty);
        assert_eq!(ty.content_type(), content_type);
        assert!(stored.name.ends_with(&format!(".{}", ty.ext())), "{}", stored.name);
        assert_eq!(StoredPicture::parse(PictureKind::Banner, &stored.name).as_ref(), Some(&stored));
        assert_eq!(StoredPicture::from_path(&stored.path()).as_ref(), Some(&stored));
        let on_disk = std::fs::read(dir.path().join("uploads/banners").join(&stored.name)).unwrap();
        assert_eq!(on_disk, bytes, "{ty:?} is kept byte for byte");
        let (_, len) = uploads.open_stored(&stored).await.unwrap().unwrap();
        assert_eq!(len, bytes.len() as u64);
    }
    assert!(incoming_is_empty(dir.path()));
}

#[tokio::test]
async fn every_frame_of_an_animation_is_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let uploads = service(dir.path());
    let apng = apng_image(3);
    let stored = upload(&uploads, PictureKind::Avatar, &apng).await.unwrap();
    assert_eq!(stored.image_type, ImageType::Png);
    // The last frame cut out (its fcTL and fdAT), the end kept: the animation control promised
    // three frames.
    let last_fctl = apng.windows(4).rposition(|w| w == b"fcTL").unwrap() - 4;
    let iend = apng.len() - 12;
    let short = [&apng[..last_fctl], &apng[iend..]].concat();
    assert!(matches!(upload(&uploads, PictureKind::Avatar, &short).await, Err(UploadError::Invalid)));
    let gif = gif_image(32, 32, 5);
    assert_eq!(upload(&uploads, PictureKind::Avatar, &gif).await.unwrap().image_type, ImageType::Gif);
}

#[tokio::test]
async fn a_lie_about_the_type_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let uploads = service(dir.path());
    let html = b"<html><script>alert(1)</script></html>".repeat(10);
    assert!(matches!(upload(&uploads, PictureKind::Avatar, &html).await, Err(UploadError::NotAnImage)));
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>";
    assert!(matches!(upload(&uploads, PictureKind::Avatar, svg).await, Err(UploadError::NotAnImage)));
    // A PNG signature and header in front of something else.
    let mut fake = png_image(4, 4)[..33].to_vec();
    fake.extend_from_slice(&html);
    assert!(matches!(upload(&uploads, PictureKind::Avatar, &fake).await, Err(UploadError::Invalid)));
    assert!(matches!(upload(&uploads, PictureKind::Avatar, b"tiny").await, Err(UploadError::NotAnImage)));
    assert!(matches!(upload(&uploads, PictureKind::Avatar, b"").await, Err(UploadError::NotAnImage)));
    settle().await;
    assert!(incoming_is_empty(dir.path()), "refused uploads leave no file");
}

#[tokio::test]
async fn truncated_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let uploads = service(dir.path());
    for bytes in [png_image(64, 64), jpeg_image(64, 64), webp_image(64, 64), gif_image(64, 64, 2)] {
        for cut in [bytes.len() - 1, bytes.len() / 2, 40] {
            let result = upload(&uploads, PictureKind::Avatar, &bytes[..cut]).await;
            assert!(matches!(result, Err(UploadError::Invalid)), "cut at {cut} of {}: {result:?}", bytes.len());
        }
    }
}

#[tokio::test]
async fn data_after_the_image_or_a_damaged_image_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let uploads = service(dir.path());
    let mut appended = png_image(8, 8);
    appended.extend_from_slice(b"<script>alert(1)</script>");
    assert!(matches!(upload(&uploads, PictureKind::Avatar, &appended).await, Err(UploadError::Invalid)));
    // A flipped byte in the middle of the compressed data: PNG's checksums catch it.
    let mut damaged = png_image(32, 32);
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x55;
    assert!(matches!(upload(&uploads, PictureKind::Avatar, &damaged).await, Err(UploadError::Invalid)));
    // A WebP whose RIFF length says more than there is.
    let mut webp = webp_image(8, 8);
    webp[4] = webp[4].wrapping_add(2);
    assert!(matches!(upload(&uploads, PictureKind::Avatar, &webp).await, Err(UploadError::Invalid)));
}

#[tokio::test]
async fn a_decompression_bomb_fails_on_its_header_before_the_rest_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let uploads = service(dir.path());
    // A small PNG claiming 100,000 × 100,000: the IHDR is rewritten (its CRC no longer matters,
    // the claim is refused before anything checks it).
    let mut bomb = png_image(16, 16);
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let mut incoming = uploads.begin(PictureKind::Avatar).await.unwrap();
    let refused = incoming.write(&bomb[..24]).await;
    assert!(matches!(refused, Err(UploadError::TooManyPixels { width: 100_000, height: 100_000 })), "{refused:?}");
    drop(incoming);
    // One side past 8192 is enough, whatever the type.
    let mut gif = gif_image(8, 8, 1);
    gif[6..8].copy_from_slice(&9000u16.to_le_bytes());
    assert!(matches!(upload(&uploads, PictureKind::Avatar, &gif).await, Err(UploadError::TooManyPixels { .. })));
    settle().await;
    assert!(incoming_is_empty(dir.path()));
}

#[tokio::test]
async fn the_cap_is_enforced_while_streaming() {
    let dir = tempfile::tempdir().unwrap();
    let config = UploadsConfig { avatar_max_bytes: 2048, ..UploadsConfig::default() };
    let uploads = Uploads::open(dir.path(), config).unwrap();
    assert_eq!(uploads.max_bytes(PictureKind::Banner), 8 * 1024 * 1024);
    let mut big = png_image(4, 4);
    big.resize(4096, 0);
    let mut incoming = uploads.begin(PictureKind::Avatar).await.unwrap();
    incoming.write(&big[..2048]).await.unwrap();
    assert!(matches!(incoming.write(&big[2048..2049]).await, Err(UploadError::TooLarge { limit: 2048 })));
}

#[test]
fn only_names_the_server_could_have_chosen_parse() {
    let good = "0123456789abcdef0123456789abcdef.png";
    assert!(StoredPicture::parse(PictureKind::Avatar, good).is_some());
    for bad in [
        "..",
        "../0123456789abcdef0123456789abcdef.png",
        "%2e%2e",
        "0123456789abcdef0123456789abcdef.png/..",
        "0123456789ABCDEF0123456789ABCDEF.png",
        "0123456789abcdef0123456789abcdef.svg",
        "0123456789abcdef0123456789abcdef.png.html",
        "0123456789abcdef0123456789abcde\\.png",
        "0123456789abcdef0123456789abcdef\0.png",
        "/etc/passwd",
        "0123456789abcdef0123456789abcdef",
        "",
    ] {
        assert!(StoredPicture::parse(PictureKind::Avatar, bad).is_none(), "{bad:?}");
    }
    assert!(StoredPicture::from_path(&format!("/uploads/avatars/{good}")).is_some());
    assert!(StoredPicture::from_path(&format!("/uploads/other/{good}")).is_none());
    assert!(StoredPicture::from_path(&format!("https://cdn.example.com/uploads/avatars/{good}")).is_none());
}

#[tokio::test]
async fn remove_deletes_uploads_and_leaves_urls_alone() {
    let dir = tempfile::tempdir().unwrap();
    let uploads = service(dir.path());
    let stored = upload(&uploads, PictureKind::Avatar, &png_image(4, 4)).await.unwrap();
    let file = dir.path().join("uploads/avatars").join(&stored.name);
    assert!(file.exists());
    uploads.remove("https://example.com/uploads/avatars/x.png").await;
    uploads.remove_all(&[stored.path(), stored.path()]).await;
    assert!(!file.exists());
    assert!(uploads.open_stored(&stored).await.unwrap().is_none());
}

#[test]
fn leftovers_of_a_crash_are_cleared_at_start() {
    let dir = tempfile::tempdir().unwrap();
    service(dir.path());
    let old = dir.path().join("uploads/incoming/half.part");
    std::fs::write(&old, b"x").unwrap();
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options().write(true).open(&old).unwrap().set_modified(two_hours_ago).unwrap();
    // Another node's upload in progress, in a shared directory, is left alone.
    let live = dir.path().join("uploads/incoming/live.part");
    std::fs::write(&live, b"x").unwrap();
    service(dir.path());
    assert!(!old.exists());
    assert!(live.exists());
}

#[test]
fn the_pixel_budget_bounds_animations() {
    let mut budget = validate::PIXEL_BUDGET;
    let side = u64::from(MAX_DIMENSION);
    assert!(validate::charge(&mut budget, side, side).is_ok());
    assert!(validate::charge(&mut budget, side, side).is_ok());
    assert!(validate::charge(&mut budget, 1, 1).is_err());
}

#[tokio::test]
async fn the_rate_limit_allows_a_burst_of_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let config = UploadsConfig { per_account_per_minute: 3, ..UploadsConfig::default() };
    let uploads = Uploads::open(dir.path(), config).unwrap();
    for _ in 0..3 {
        uploads.admit(7).unwrap();
    }
    let wait = uploads.admit(7).unwrap_err();
    assert!(wait > Duration::from_secs(10) && wait <= Duration::from_secs(20), "{wait:?}");
    uploads.admit(8).unwrap();
}
