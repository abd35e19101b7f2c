//! Reading TIFF files: every page through the `tiff` crate, plus what it does not cover —
//! pages with a colour table (ImageJ's 8-bit images with a LUT) and ImageJ's stacks over
//! 4 GiB, whose planes follow the first one without IFDs of their own. Calibration comes from
//! the ImageJ description and the TIFF resolution tags.

use super::imagej::{micron_factor, Description};
use super::tiff::{file_error, Hyperstack, PlaneSink};
use crate::{Result, VoxelSize};
use ::tiff::decoder::ifd::Value;
use ::tiff::decoder::{ChunkType, Decoder, DecodingResult, Limits};
use ::tiff::tags::Tag;
use ::tiff::{TiffError, TiffFormatError};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// Sample type of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SampleKind {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    F64,
}

impl SampleKind {
    fn new(bits: u16, format: u16) -> std::result::Result<SampleKind, String> {
        use SampleKind::*;
        Ok(match (format, bits) {
            (1, 8) => U8,
            (2, 8) => I8,
            (1, 16) => U16,
            (2, 16) => I16,
            (1, 32) => U32,
            (2, 32) => I32,
            (3, 32) => F32,
            (3, 64) => F64,
            (1 | 2, 1) => return Err("1-bit (binary) TIFFs are not supported".into()),
            _ => {
                return Err(format!(
                    "{bits}-bit {} samples are not supported (use 8, 16 or 32 bits)",
                    match format {
                        1 => "unsigned",
                        2 => "signed",
                        3 => "floating-point",
                        _ => "unknown-format",
                    }
                ))
            }
        })
    }
    fn bytes(self) -> usize {
        use SampleKind::*;
        match self {
            U8 | I8 => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            F64 => 8,
        }
    }
}

/// One decoded page.
struct Page {
    width: usize,
    height: usize,
    kind: SampleKind,
    pixels: Vec<f32>,
    /// File offset of the pixel data when it is uncompressed and contiguous.
    contiguous_at: Option<u64>,
}

pub(crate) fn read_inner(path: &Path) -> Result<Hyperstack> {
    let mut data: Vec<f32> = Vec::new();
    let mut stack = read_planes(path, &mut |plane, _, _| {
        // A file of many pages sharing one strip is small on disk and huge in memory.
        crate::memory::try_grow(&mut data, plane.len())?;
        data.extend_from_slice(plane);
        Ok(())
    })?;
    stack.data = data;
    Ok(stack)
}

/// Reads a TIFF plane by plane, handing each plane (x fastest, as f32) with its width and
/// height to `on_plane` in file order, so that a long stack never has to be in memory at
/// once. Returns the stack's description with empty `data`. An error from `on_plane` stops
/// the reading.
pub(crate) fn read_planes(path: &Path, on_plane: &mut PlaneSink) -> Result<Hyperstack> {
    let fail = |m: String| file_error(path, m);
    let meta = std::fs::metadata(path).map_err(|e| fail(open_message(&e)))?;
    if meta.is_dir() {
        return Err(fail("is a folder, not a TIFF file".into()));
    }
    let file_len = meta.len();
    let mut raw = File::open(path).map_err(|e| fail(open_message(&e)))?;
    let mut magic = [0u8; 2];
    if file_len < 8 || raw.read_exact(&mut magic).is_err() {
        return Err(fail("not a TIFF file (too short)".into()));
    }
    let little_endian = &magic == b"II";

    let reader = BufReader::new(File::open(path).map_err(|e| fail(open_message(&e)))?);
    // No compressed strip or tag value can be larger than the file itself, and no decoded
    // buffer (a plane, a tag's values) larger than 2000 times the file (compression ratios stay
    // far below) or half the memory left; a decoded plane is also checked against memory in
    // `read_page`, with a clearer message.
    let file_bytes = usize::try_from(file_len).unwrap_or(usize::MAX);
    let memory = crate::memory::available_memory().map_or(usize::MAX / 2, |m| {
        usize::try_from(m / 2).unwrap_or(usize::MAX / 2)
    });
    let mut limits = Limits::default();
    limits.decoding_buffer_size = file_bytes.saturating_mul(2000).min(memory);
    limits.intermediate_buffer_size = file_bytes;
    limits.ifd_value_size = file_bytes.min(64 << 20);
    let mut dec = Decoder::new(reader)
        .map_err(|e| fail(tiff_message(e)))?
        .with_limits(limits);

    // Metadata is in the first page.
    let description = match dec.find_tag(Tag::ImageDescription) {
        Ok(Some(Value::Ascii(s))) => Some(s),
        _ => None,
    };
    let ij = description.as_deref().and_then(Description::parse);
    let x_res = rational_tag(&mut dec, Tag::XResolution);
    let y_res = rational_tag(&mut dec, Tag::YResolution);
    let res_unit = dec
        .find_tag_unsigned::<u16>(Tag::ResolutionUnit)
        .ok()
        .flatten();

    let mut first: Option<Page> = None;
    let mut planes = 0usize;
    loop {
        let reduced = dec
            .find_tag_unsigned::<u32>(Tag::NewSubfileType)
            .ok()
            .flatten()
            .is_some_and(|t| t & 1 == 1);
        if planes == 0 || !reduced {
            let page =
                read_page(&mut dec, &mut raw, little_endian, file_len).map_err(|e| match e {
                    PageError::Bad(m) if planes == 0 => fail(m),
                    PageError::Bad(m) => fail(format!("page {}: {m}", planes + 1)),
                    PageError::Memory(e) => e,
                })?;
            if let Some(f) = &first {
                if (page.width, page.height, page.kind) != (f.width, f.height, f.kind) {
                    return Err(fail(format!(
                        "page {} is {}×{} pixels of {}-bit {:?} but page 1 is {}×{} of {}-bit {:?}; \
                         all pages of a stack must have the same size and bit depth",
                        planes + 1,
                        page.width,
                        page.height,
                        page.kind.bytes() * 8,
                        page.kind,
                        f.width,
                        f.height,
                        f.kind.bytes() * 8,
                        f.kind
                    )));
                }
            }
            on_plane(&page.pixels, page.width, page.height)?;
            planes += 1;
            if first.is_none() {
                first = Some(Page {
                    pixels: Vec::new(),
                    ..page
                });
            }
        }
        if !dec.more_images() {
            break;
        }
        dec.next_image().map_err(|e| {
            fail(format!(
                "cannot read page {}: {}",
                planes + 1,
                tiff_message(e)
            ))
        })?;
    }
    let first = first.expect("at least one page was read");

    // ImageJ writes stacks over 4 GiB with one IFD only; the planes follow each other. A file
    // with more than one page but fewer than its description claims is inconsistent: the
    // bytes after its last plane are IFDs and tags, not pixels.
    if let Some(images) = ij.as_ref().and_then(|d| d.images) {
        if images > planes && planes > 1 {
            return Err(fail(format!(
                "the ImageJ description says {images} images but the file has {planes} pages: \
                 it is truncated or its description was edited; open it in Fiji and save it again"
            )));
        }
    }
    if let (Some(images), Some(start)) = (ij.as_ref().and_then(|d| d.images), first.contiguous_at) {
        if images > planes {
            let plane_bytes = (first.width * first.height * first.kind.bytes()) as u64;
            let needed = plane_bytes
                .checked_mul(images as u64)
                .and_then(|b| b.checked_add(start));
            if needed.is_none_or(|n| n > file_len) {
                return Err(fail(format!(
                    "the ImageJ description says {images} images but the file holds only {}: \
                     it is truncated",
                    (file_len.saturating_sub(start) / plane_bytes.max(1)).max(planes as u64)
                )));
            }
            let n = first.width * first.height;
            // The planes read through IFDs are the first ones; the rest follow the first.
            for k in planes..images {
                let plane = read_raw(
                    &mut raw,
                    start + plane_bytes * k as u64,
                    n,
                    first.kind,
                    little_endian,
                )
                .map_err(|m| fail(format!("image {}: {m}", k + 1)))?;
                on_plane(&plane, first.width, first.height)?;
            }
            planes = images;
        }
    }

    let (channels, slices, frames) = match &ij {
        Some(d) => d.dims(planes),
        None => (1, planes, 1),
    };
    let (voxel, unit) = calibration(ij.as_ref(), x_res, y_res, res_unit);
    Ok(Hyperstack {
        width: first.width,
        height: first.height,
        channels,
        slices,
        frames,
        data: Vec::new(),
        voxel,
        unit,
        bit_depth: (first.kind.bytes() * 8) as u8,
        frame_interval: ij.and_then(|d| d.finterval),
    })
}

/// Voxel size and unit from the ImageJ description and the TIFF resolution tags.
fn calibration(
    ij: Option<&Description>,
    x_res: Option<f64>,
    y_res: Option<f64>,
    res_unit: Option<u16>,
) -> (VoxelSize, String) {
    let size = |r: Option<f64>| r.map(|r| 1.0 / r);
    let ij_unit = ij.and_then(|d| d.unit.clone());
    let (unit, x, y) = match (ij_unit, res_unit, x_res) {
        (Some(u), _, _) => {
            let x = size(x_res).unwrap_or(1.0);
            (u, x, size(y_res).unwrap_or(x))
        }
        // TIFF's own units: centimetre and inch (72 dpi is a screen default, not a
        // calibration).
        (None, Some(3), Some(r)) => {
            let x = 1e4 / r;
            ("micron".to_string(), x, y_res.map_or(x, |r| 1e4 / r))
        }
        (None, Some(2), Some(r)) if r != 72.0 => {
            let x = 25400.0 / r;
            ("micron".to_string(), x, y_res.map_or(x, |r| 25400.0 / r))
        }
        _ => ("pixel".to_string(), 1.0, 1.0),
    };
    // Without a z spacing, z is assumed equal to the pixel width.
    let z = ij.and_then(|d| d.spacing).unwrap_or(x);
    let mut voxel = VoxelSize { z, y, x };
    match micron_factor(&unit) {
        Some(f) => {
            voxel.x *= f;
            voxel.y *= f;
            voxel.z *= f;
            (voxel, "micron".into())
        }
        None => (voxel, unit),
    }
}

fn rational_tag<R: Read + Seek>(dec: &mut Decoder<R>, tag: Tag) -> Option<f64> {
    let (n, d) = match dec.find_tag(tag).ok()?? {
        Value::Rational(n, d) => (n as f64, d as f64),
        Value::RationalBig(n, d) => (n as f64, d as f64),
        Value::Float(v) => (v as f64, 1.0),
        Value::Double(v) => (v, 1.0),
        Value::Short(v) => (v as f64, 1.0),
        Value::Unsigned(v) => (v as f64, 1.0),
        _ => return None,
    };
    let r = n / d;
    (r.is_finite() && r > 0.0).then_some(r)
}

fn tag_u16<R: Read + Seek>(dec: &mut Decoder<R>, tag: Tag) -> Option<u16> {
    match dec.find_tag_unsigned_vec::<u16>(tag) {
        Ok(Some(v)) => v.first().copied(),
        _ => None,
    }
}

/// Why a page cannot be read: the file (a message to prefix with the path and page) or
/// memory.
enum PageError {
    Bad(String),
    Memory(crate::Error),
}

impl From<String> for PageError {
    fn from(m: String) -> Self {
        PageError::Bad(m)
    }
}

impl From<&str> for PageError {
    fn from(m: &str) -> Self {
        PageError::Bad(m.into())
    }
}

fn read_page<R: Read + Seek>(
    dec: &mut Decoder<R>,
    raw: &mut File,
    little_endian: bool,
    file_len: u64,
) -> std::result::Result<Page, PageError> {
    let (w, h) = dec.dimensions().map_err(tiff_message)?;
    let (width, height) = (w as usize, h as usize);
    let samples = tag_u16(dec, Tag::SamplesPerPixel).unwrap_or(1);
    let photometric = tag_u16(dec, Tag::PhotometricInterpretation);
    if matches!(photometric, Some(2) | Some(6)) || samples >= 3 {
        return Err("RGB TIFF is not supported: split the channels first \
                    (Image › Color › Split Channels in Fiji) and process each one"
            .into());
    }
    if samples != 1 {
        return Err(format!(
            "{samples} samples per pixel (e.g. gray + alpha) are not supported; \
             save a single-channel grayscale TIFF"
        )
        .into());
    }
    let bits = tag_u16(dec, Tag::BitsPerSample).unwrap_or(1);
    let format = tag_u16(dec, Tag::SampleFormat).unwrap_or(1);
    let kind = SampleKind::new(bits, format)?;
    let compression = tag_u16(dec, Tag::Compression).unwrap_or(1);
    let plane_bytes = (width as u64)
        .checked_mul(height as u64)
        .and_then(|n| n.checked_mul(kind.bytes() as u64))
        .ok_or("the image size is corrupt")?;
    // Refuse sizes the file cannot hold before allocating (compression ratios stay far
    // below 2000:1 in practice).
    let max_ratio = if compression == 1 { 1 } else { 2000 };
    if plane_bytes > file_len.saturating_mul(max_ratio) {
        return Err(format!(
            "the header says {width}×{height} pixels, more than the file holds: \
             it is truncated or corrupt"
        )
        .into());
    }
    if width == 0 || height == 0 {
        return Err(format!("empty image ({width}×{height} pixels)").into());
    }
    // The decoded plane, its f32 copy and the caller's copy of it.
    let n_pixels = (width as u64) * (height as u64);
    crate::memory::check_fits(
        n_pixels
            .checked_mul(8)
            .and_then(|b| b.checked_add(plane_bytes)),
    )
    .map_err(PageError::Memory)?;

    let contiguous_at = if compression == 1 && dec.get_chunk_type() == ChunkType::Strip {
        let offsets = dec.get_tag_u64_vec(Tag::StripOffsets).unwrap_or_default();
        let counts = dec
            .get_tag_u64_vec(Tag::StripByteCounts)
            .unwrap_or_default();
        let contiguous = !offsets.is_empty()
            && offsets.len() == counts.len()
            && offsets
                .windows(2)
                .zip(&counts)
                .all(|(o, c)| o[0].checked_add(*c) == Some(o[1]))
            && counts.iter().sum::<u64>() >= plane_bytes;
        contiguous.then(|| offsets[0])
    } else {
        None
    };

    let n = width * height;
    let pixels = if photometric == Some(3) {
        // A colour table (ImageJ's 8-bit images with a LUT): the values are what counts.
        let at = contiguous_at.ok_or(
            "TIFFs with a colour table (LUT) must be uncompressed; save the image from Fiji \
             (File › Save As › Tiff…)",
        )?;
        read_raw(raw, at, n, kind, little_endian)?
    } else {
        let mut v = decoded_to_f32(dec.read_image().map_err(tiff_message)?);
        if photometric == Some(0) && kind == SampleKind::U8 {
            // WhiteIsZero: ImageJ keeps the stored values (and inverts the LUT).
            v.iter_mut().for_each(|p| *p = 255.0 - *p);
        }
        v
    };
    if pixels.len() < n {
        return Err(format!(
            "decoded {} pixels, {width}×{height} expected: the file is corrupt",
            pixels.len()
        )
        .into());
    }
    let mut pixels = pixels;
    pixels.truncate(n);
    Ok(Page {
        width,
        height,
        kind,
        pixels,
        contiguous_at,
    })
}

fn decoded_to_f32(r: DecodingResult) -> Vec<f32> {
    fn conv<T: Copy>(v: Vec<T>, f: impl Fn(T) -> f32) -> Vec<f32> {
        v.into_iter().map(f).collect()
    }
    match r {
        DecodingResult::U8(v) => conv(v, f32::from),
        DecodingResult::I8(v) => conv(v, f32::from),
        DecodingResult::U16(v) => conv(v, f32::from),
        DecodingResult::I16(v) => conv(v, f32::from),
        DecodingResult::U32(v) => conv(v, |x| x as f32),
        DecodingResult::I32(v) => conv(v, |x| x as f32),
        DecodingResult::U64(v) => conv(v, |x| x as f32),
        DecodingResult::I64(v) => conv(v, |x| x as f32),
        DecodingResult::F32(v) => v,
        DecodingResult::F64(v) => conv(v, |x| x as f32),
    }
}

/// Reads `n` uncompressed samples at `offset`.
fn read_raw(
    raw: &mut File,
    offset: u64,
    n: usize,
    kind: SampleKind,
    little_endian: bool,
) -> std::result::Result<Vec<f32>, String> {
    let mut bytes = vec![0u8; n * kind.bytes()];
    raw.seek(SeekFrom::Start(offset))
        .and_then(|_| raw.read_exact(&mut bytes))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                "the file ends early: it is truncated or corrupt".to_string()
            }
            _ => format!("read error: {e}"),
        })?;
    macro_rules! decode {
        ($t:ty, $n:expr) => {
            bytes
                .chunks_exact($n)
                .map(|c| {
                    let a: [u8; $n] = c.try_into().expect("chunk size");
                    (if little_endian {
                        <$t>::from_le_bytes(a)
                    } else {
                        <$t>::from_be_bytes(a)
                    }) as f32
                })
                .collect()
        };
    }
    Ok(match kind {
        SampleKind::U8 => bytes.iter().map(|&b| b as f32).collect(),
        SampleKind::I8 => bytes.iter().map(|&b| b as i8 as f32).collect(),
        SampleKind::U16 => decode!(u16, 2),
        SampleKind::I16 => decode!(i16, 2),
        SampleKind::U32 => decode!(u32, 4),
        SampleKind::I32 => decode!(i32, 4),
        SampleKind::F32 => decode!(f32, 4),
        SampleKind::F64 => decode!(f64, 8),
    })
}

fn open_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "file not found".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => format!("cannot open: {e}"),
    }
}

fn tiff_message(e: TiffError) -> String {
    match e {
        TiffError::FormatError(
            TiffFormatError::TiffSignatureNotFound | TiffFormatError::TiffSignatureInvalid,
        ) => "not a TIFF file".into(),
        TiffError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "the file ends early: it is truncated or corrupt".into()
        }
        // A seek to an offset no file can have (EINVAL): a header value is corrupt, e.g. a
        // BigTIFF signature on a classic TIFF.
        TiffError::IoError(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            "an offset in the header points outside the file: it is corrupt or not a TIFF".into()
        }
        TiffError::IoError(e) => format!("read error: {e}"),
        // The limits are the file's size (see `read_planes`).
        TiffError::LimitsExceeded => {
            "the header declares more data than the file holds (or than memory allows): it is \
             truncated or corrupt"
                .into()
        }
        TiffError::UnsupportedError(e) => format!("unsupported TIFF variant: {e}"),
        TiffError::FormatError(TiffFormatError::InconsistentSizesEncountered) => {
            "the image size in the header does not match its strips or tiles: the file is corrupt"
                .into()
        }
        TiffError::FormatError(e) => format!("corrupt or unsupported TIFF: {e}"),
        e => format!("cannot decode the TIFF: {e}"),
    }
}
