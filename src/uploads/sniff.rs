//! What an upload is, from its first bytes: the image type by its signature and the dimensions
//! its header declares, read before a single pixel is decoded, so a small file that claims a
//! huge picture is refused at once (SPEC §10). The client's declared type and file name are
//! never consulted.

use super::UploadError;

/// Largest width and height accepted (SPEC §10).
pub const MAX_DIMENSION: u32 = 8192;

/// Bytes needed to tell the four types apart (WebP's `RIFF....WEBP` is the longest).
pub const SIGNATURE_LEN: usize = 12;

/// The image types Switchboard stores and serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageType {
    Png,
    Jpeg,
    WebP,
    Gif,
}

impl ImageType {
    /// The extension of stored files of this type (the only ones [`ImageType::from_ext`] takes).
    pub fn ext(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::WebP => "webp",
            Self::Gif => "gif",
        }
    }

    pub fn from_ext(ext: &str) -> Option<Self> {
        [Self::Png, Self::Jpeg, Self::WebP, Self::Gif].into_iter().find(|t| t.ext() == ext)
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::WebP => "image/webp",
            Self::Gif => "image/gif",
        }
    }
}

/// The type whose signature `head` starts with; `head` holds at least [`SIGNATURE_LEN`] bytes.
pub fn sniff(head: &[u8]) -> Result<ImageType, UploadError> {
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Ok(ImageType::Png)
    } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Ok(ImageType::Jpeg)
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Ok(ImageType::Gif)
    } else if head.len() >= SIGNATURE_LEN && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
        Ok(ImageType::WebP)
    } else {
        Err(UploadError::NotAnImage)
    }
}

/// The dimensions the header in `head` declares, or `None` while `head` is too short to hold
/// them. A header that cannot be one of `ty`'s is an error.
pub fn dimensions(ty: ImageType, head: &[u8]) -> Result<Option<(u32, u32)>, UploadError> {
    let dims = match ty {
        ImageType::Png => png(head)?,
        ImageType::Gif => head.get(6..10).map(|b| (u32::from(le16(&b[0..2])), u32::from(le16(&b[2..4])))),
        ImageType::WebP => webp(head)?,
        ImageType::Jpeg => jpeg(head)?,
    };
    match dims {
        Some((0, _) | (_, 0)) => Err(UploadError::Invalid),
        other => Ok(other),
    }
}

/// Refuses dimensions past [`MAX_DIMENSION`].
pub fn check_dimensions((width, height): (u32, u32)) -> Result<(), UploadError> {
    if width > MAX_DIMENSION || height > MAX_DIMENSION {
        return Err(UploadError::TooManyPixels { width, height });
    }
    Ok(())
}

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn le24(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], 0])
}

/// The IHDR chunk comes first, right after the signature.
fn png(head: &[u8]) -> Result<Option<(u32, u32)>, UploadError> {
    let Some(ihdr) = head.get(8..24) else { return Ok(None) };
    if ihdr[0..8] != [0, 0, 0, 13, b'I', b'H', b'D', b'R'] {
        return Err(UploadError::Invalid);
    }
    let width = u32::from_be_bytes([ihdr[8], ihdr[9], ihdr[10], ihdr[11]]);
    let height = u32::from_be_bytes([ihdr[12], ihdr[13], ihdr[14], ihdr[15]]);
    Ok(Some((width, height)))
}

/// The first chunk after `RIFF....WEBP` is the lossy (`VP8 `), lossless (`VP8L`) or extended
/// (`VP8X`, canvas size) header.
fn webp(head: &[u8]) -> Result<Option<(u32, u32)>, UploadError> {
    let Some(chunk) = head.get(12..30) else { return Ok(None) };
    let body = &chunk[8..];
    match &chunk[0..4] {
        b"VP8 " => {
            if body[3..6] != [0x9D, 0x01, 0x2A] {
                return Err(UploadError::Invalid);
            }
            Ok(Some((u32::from(le16(&body[6..8]) & 0x3FFF), u32::from(le16(&body[8..10]) & 0x3FFF))))
        }
        b"VP8L" => {
            if body[0] != 0x2F {
                return Err(UploadError::Invalid);
            }
            let bits = u32::from_le_bytes([body[1], body[2], body[3], body[4]]);
            Ok(Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)))
        }
        b"VP8X" => Ok(Some((le24(&body[4..7]) + 1, le24(&body[7..10]) + 1))),
        _ => Err(UploadError::Invalid),
    }
}

/// Walks the marker segments up to the frame header (SOF0–SOF15 but DHT, JPG and DAC). The
/// scan starting, or the image ending, before a frame header means there is none.
fn jpeg(head: &[u8]) -> Result<Option<(u32, u32)>, UploadError> {
    let mut at = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        while head.get(at) == Some(&0xFF) && head.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let (Some(&ff), Some(&marker)) = (head.get(at), head.get(at + 1)) else { return Ok(None) };
        if ff != 0xFF {
            return Err(UploadError::Invalid);
        }
        at += 2;
        match marker {
            // Stand-alone markers: no length follows.
            0x01 | 0xD0..=0xD7 => continue,
            // SOI again, EOI or the scan before any frame header.
            0xD8..=0xDA => return Err(UploadError::Invalid),
            _ => {}
        }
        let Some(len) = head.get(at..at + 2).map(be16) else { return Ok(None) };
        if len < 2 {
            return Err(UploadError::Invalid);
        }
        if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let Some(sof) = head.get(at + 2..at + 7) else { return Ok(None) };
            return Ok(Some((u32::from(be16(&sof[3..5])), u32::from(be16(&sof[1..3])))));
        }
        at += usize::from(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_decide_the_type() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap(), ImageType::Png);
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF\0\x01").unwrap(), ImageType::Jpeg);
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0\0\0").unwrap(), ImageType::Gif);
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8L").unwrap(), ImageType::WebP);
        for not in [
            &b"<svg xmlns=\"http://www.w3.org/2000/svg\">"[..],
            b"<html><script>",
            b"RIFF\x10\0\0\0WAVEfmt ",
            b"BM\0\0\0\0\0\0\0\0\0\0",
        ] {
            assert!(matches!(sniff(not), Err(UploadError::NotAnImage)));
        }
    }

    #[test]
    fn a_png_header_claiming_a_huge_picture_is_refused_from_24_bytes() {
        let mut head = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        assert_eq!(dimensions(ImageType::Png, &head).unwrap(), None, "more bytes are needed");
        head.extend_from_slice(&100_000u32.to_be_bytes());
        head.extend_from_slice(&100_000u32.to_be_bytes());
        let dims = dimensions(ImageType::Png, &head).unwrap().unwrap();
        assert_eq!(dims, (100_000, 100_000));
        assert!(matches!(check_dimensions(dims), Err(UploadError::TooManyPixels { width: 100_000, .. })));
        assert!(check_dimensions((8192, 8192)).is_ok());
        assert!(check_dimensions((8193, 1)).is_err());
    }

    #[test]
    fn jpeg_dimensions_come_from_the_frame_header_past_other_segments() {
        let mut head = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x06, 1, 2, 3, 4, 0xFF, 0xFF];
        assert_eq!(dimensions(ImageType::Jpeg, &head).unwrap(), None);
        head.extend_from_slice(&[0xC2, 0x00, 0x11, 8, 0x01, 0x00, 0x02, 0x00]);
        assert_eq!(dimensions(ImageType::Jpeg, &head).unwrap(), Some((512, 256)));
        let scan_first = [0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x08];
        assert!(matches!(dimensions(ImageType::Jpeg, &scan_first), Err(UploadError::Invalid)));
    }

    #[test]
    fn webp_and_gif_headers() {
        let mut vp8x = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0".to_vec();
        vp8x.extend_from_slice(&[0xFF, 0x1F, 0x00, 0x0F, 0x00, 0x00]);
        assert_eq!(dimensions(ImageType::WebP, &vp8x).unwrap(), Some((8192, 16)));
        assert_eq!(dimensions(ImageType::Gif, b"GIF89a\x40\x00\x20\x00").unwrap(), Some((64, 32)));
        assert!(matches!(dimensions(ImageType::Gif, b"GIF89a\x00\x00\x20\x00"), Err(UploadError::Invalid)));
    }
}
