//! Small generated images of the four upload types, and a multipart body builder.

use std::borrow::Cow;

fn pixels(width: u32, height: u32, channels: usize) -> Vec<u8> {
    (0..width * height)
        .flat_map(|i| [(i % 251) as u8, (i / 7 % 253) as u8, (i * 3 % 256) as u8, 255].into_iter().take(channels))
        .collect()
}

pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&pixels(width, height, 4)).unwrap();
    writer.finish().unwrap();
    out
}

pub fn gif(width: u16, height: u16) -> Vec<u8> {
    let palette: Vec<u8> = (0..=255u8).flat_map(|i| [i, 255 - i, i / 2]).collect();
    let mut out = Vec::new();
    {
        let mut encoder = gif::Encoder::new(&mut out, width, height, &palette).unwrap();
        let indices: Vec<u8> = (0..usize::from(width) * usize::from(height)).map(|i| (i % 256) as u8).collect();
        encoder.write_frame(&gif::Frame { width, height, buffer: Cow::Owned(indices), ..Default::default() }).unwrap();
    }
    out
}

pub fn webp(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    image_webp::WebPEncoder::new(&mut out)
        .encode(&pixels(width, height, 4), width, height, image_webp::ColorType::Rgba8)
        .unwrap();
    out
}

pub fn jpeg(width: u16, height: u16) -> Vec<u8> {
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 85)
        .encode(&pixels(u32::from(width), u32::from(height), 3), width, height, jpeg_encoder::ColorType::Rgb)
        .unwrap();
    out
}

/// A PNG whose header claims `side` × `side` while the file stays small.
pub fn png_claiming(side: u32) -> Vec<u8> {
    let mut bomb = png(16, 16);
    bomb[16..20].copy_from_slice(&side.to_be_bytes());
    bomb[20..24].copy_from_slice(&side.to_be_bytes());
    bomb
}

pub const BOUNDARY: &str = "----switchboard-test-boundary-7d1f";

/// One part of a multipart form.
pub enum Part<'a> {
    File { name: &'a str, file_name: &'a str, content_type: &'a str, bytes: &'a [u8] },
    Text { name: &'a str, value: &'a str },
}

/// A `multipart/form-data` body with [`BOUNDARY`].
pub fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match part {
            Part::File { name, file_name, content_type, bytes } => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: {content_type}\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(bytes);
            }
            Part::Text { name, value } => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}").as_bytes(),
                );
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}
