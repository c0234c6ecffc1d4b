//! The whole-file check of an upload, run on a blocking thread: the file must end where its
//! format says an image ends (a truncated file, or one with something appended, is refused) and
//! must decode completely, with the decoders' allocation limits set and the pixel work of
//! animations bounded. A file that passes is served as it was sent, so nothing but an image of
//! the sniffed type is ever served.

use std::io::Cursor;
use std::num::NonZeroU64;

use super::UploadError;
use super::sniff::{self, ImageType, MAX_DIMENSION};

/// Pixels decoded per file at most, over all frames of an animation: twice a full-size still.
/// An animation of many large frames costs decoding time a small file should not buy.
pub(super) const PIXEL_BUDGET: u64 = 2 * MAX_DIMENSION as u64 * MAX_DIMENSION as u64;

/// Bytes a decoder may allocate beyond its output (PNG's and WebP's own buffers).
const DECODER_MEMORY: u64 = 64 * 1024 * 1024;

/// Checks that `bytes` is one complete image of type `ty` within the limits.
pub fn validate(ty: ImageType, bytes: &[u8]) -> Result<(), UploadError> {
    // The header's claim is checked again here: a JPEG's frame header may lie past the part
    // the stream looked at.
    let dims = sniff::dimensions(ty, bytes)?.ok_or(UploadError::Invalid)?;
    sniff::check_dimensions(dims)?;
    check_end(ty, bytes)?;
    match ty {
        ImageType::Png => png(bytes),
        ImageType::Gif => gif(bytes),
        ImageType::WebP => webp(bytes),
        ImageType::Jpeg => jpeg(bytes, dims),
    }
}

/// The format's end marker closes the file: PNG's IEND chunk, GIF's trailer, JPEG's EOI, the
/// RIFF length of WebP.
fn check_end(ty: ImageType, bytes: &[u8]) -> Result<(), UploadError> {
    const IEND: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];
    let ends = match ty {
        ImageType::Png => bytes.ends_with(&IEND),
        ImageType::Gif => bytes.ends_with(&[0x3B]),
        ImageType::Jpeg => bytes.ends_with(&[0xFF, 0xD9]),
        ImageType::WebP => {
            let declared = bytes.get(4..8).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
            u64::from(declared) + 8 == bytes.len() as u64
        }
    };
    if ends { Ok(()) } else { Err(UploadError::Invalid) }
}

pub(super) fn charge(budget: &mut u64, width: u64, height: u64) -> Result<(), UploadError> {
    *budget = budget.checked_sub(width * height).ok_or(UploadError::Invalid)?;
    Ok(())
}

/// Row by row (memory of one row), every frame of an APNG, then the chunks to IEND with their
/// checksums.
fn png(bytes: &[u8]) -> Result<(), UploadError> {
    let limits = png::Limits { bytes: DECODER_MEMORY as usize };
    let mut reader = png::Decoder::new_with_limits(Cursor::new(bytes), limits).read_info()?;
    let frames = reader.info().animation_control().map_or(1, |a| a.num_frames.max(1));
    let mut budget = PIXEL_BUDGET;
    for frame in 0..frames {
        if frame > 0 {
            reader.next_frame_info()?;
        }
        let (width, height) = reader
            .info()
            .frame_control()
            .map_or_else(|| (reader.info().width, reader.info().height), |fc| (fc.width, fc.height));
        charge(&mut budget, u64::from(width), u64::from(height))?;
        while reader.next_row()?.is_some() {}
    }
    reader.finish()?;
    Ok(())
}

/// Every frame as palette indices (a byte per pixel), each within the logical screen.
fn gif(bytes: &[u8]) -> Result<(), UploadError> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    options.check_frame_consistency(true);
    let frame_limit =
        NonZeroU64::new(u64::from(MAX_DIMENSION) * u64::from(MAX_DIMENSION)).ok_or(UploadError::Invalid)?;
    options.set_memory_limit(gif::MemoryLimit::Bytes(frame_limit));
    let mut decoder = options.read_info(Cursor::new(bytes))?;
    let mut budget = PIXEL_BUDGET;
    let mut buf = Vec::new();
    let mut frames = 0u32;
    while let Some(frame) = decoder.next_frame_info()? {
        charge(&mut budget, u64::from(frame.width), u64::from(frame.height))?;
        frames += 1;
        buf.resize(decoder.buffer_size(), 0);
        decoder.read_into_buffer(&mut buf)?;
    }
    if frames == 0 {
        return Err(UploadError::Invalid);
    }
    Ok(())
}

/// The still image, or every frame of an animation composed on the canvas.
fn webp(bytes: &[u8]) -> Result<(), UploadError> {
    let mut decoder = image_webp::WebPDecoder::new(Cursor::new(bytes))?;
    decoder.set_memory_limit(DECODER_MEMORY as usize);
    let (width, height) = decoder.dimensions();
    sniff::check_dimensions((width, height))?;
    let size = decoder.output_buffer_size().ok_or(UploadError::Invalid)?;
    let mut buf = vec![0; size];
    if decoder.is_animated() {
        let mut budget = PIXEL_BUDGET;
        for _ in 0..decoder.num_frames() {
            charge(&mut budget, u64::from(width), u64::from(height))?;
            decoder.read_frame(&mut buf)?;
        }
    } else {
        decoder.read_image(&mut buf)?;
    }
    Ok(())
}

/// Strict mode: a damaged or cut entropy-coded segment is an error, not grey pixels.
fn jpeg(bytes: &[u8], (width, height): (u32, u32)) -> Result<(), UploadError> {
    use zune_jpeg::zune_core::bytestream::ZCursor;
    use zune_jpeg::zune_core::options::DecoderOptions;
    let options = DecoderOptions::default()
        .set_max_width(MAX_DIMENSION as usize)
        .set_max_height(MAX_DIMENSION as usize)
        .set_strict_mode(true);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers()?;
    let info = decoder.info().ok_or(UploadError::Invalid)?;
    if (u32::from(info.width), u32::from(info.height)) != (width, height) {
        return Err(UploadError::Invalid);
    }
    decoder.decode()?;
    Ok(())
}

impl From<png::DecodingError> for UploadError {
    fn from(_: png::DecodingError) -> Self {
        Self::Invalid
    }
}

impl From<gif::DecodingError> for UploadError {
    fn from(_: gif::DecodingError) -> Self {
        Self::Invalid
    }
}

impl From<image_webp::DecodingError> for UploadError {
    fn from(_: image_webp::DecodingError) -> Self {
        Self::Invalid
    }
}

impl From<zune_jpeg::errors::DecodeErrors> for UploadError {
    fn from(_: zune_jpeg::errors::DecodeErrors) -> Self {
        Self::Invalid
    }
}
