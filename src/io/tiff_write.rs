//! Writes 32-bit float ImageJ hyperstack TIFFs, laid out as ImageJ's own `TiffEncoder` does:
//! header, first IFD with the ImageJ description, the pixel data of all planes one after the
//! other, then the IFDs of the other planes. ImageJ reads only the first IFD of such a file
//! and takes the planes as contiguous, so this layout is required, not a detail. Files over
//! 4 GiB get only the first IFD (as ImageJ writes them); ImageJ, tifffile and
//! [`read_tiff`](super::tiff::read_tiff) read them from the description's `images=`.
//!
//! The file is written under a temporary name in the target folder and renamed when
//! complete: an interrupted write never leaves a partial output file.

use super::atomic::TempFile;
use super::imagej::{format_description, rational, DescriptionOut};
use super::tiff::{file_error, Hyperstack};
use crate::progress::Progress;
use crate::{Error, Result};
use std::io::{BufWriter, Write};
use std::path::Path;

const SHORT: u16 = 3;
const LONG: u16 = 4;
const ASCII: u16 = 2;
const RATIONAL: u16 = 5;

/// Entries of an IFD without the description (the first IFD has one more).
const ENTRIES: usize = 14;
const IFD_LEN: u64 = 2 + 12 * ENTRIES as u64 + 4;
/// Bytes of a later IFD with its two rationals.
const IFD_BLOCK: u64 = IFD_LEN + 16;

pub(crate) fn write_hyperstack(
    path: &Path,
    stack: &Hyperstack,
    progress: &mut dyn Progress,
) -> Result<()> {
    stack.check()?;
    let fail = |m: String| file_error(path, m);
    let plane_bytes = (stack.plane_len() * 4) as u64;
    if stack.width > u32::MAX as usize
        || stack.height > u32::MAX as usize
        || plane_bytes > u32::MAX as u64
    {
        return Err(fail(format!(
            "a {}×{} plane is too large for a TIFF file",
            stack.width, stack.height
        )));
    }
    let planes = stack.planes() as u64;

    let (min, max) = finite_range(&stack.data);
    let description = format_description(&DescriptionOut {
        channels: stack.channels,
        slices: stack.slices,
        frames: stack.frames,
        unit: &stack.unit,
        spacing: stack.voxel.z,
        finterval: stack.frame_interval,
        min,
        max,
    });
    let mut desc_bytes = description.into_bytes();
    desc_bytes.push(0);

    // Layout.
    let ifd0 = 8u64;
    let desc_at = ifd0 + IFD_LEN + 12; // the first IFD has one entry more
    let xres_at = even(desc_at + desc_bytes.len() as u64);
    let yres_at = xres_at + 8;
    let data_at = (yres_at + 8).next_multiple_of(16);
    let data_end = data_at + plane_bytes * planes;
    let all_ifds = data_end + IFD_BLOCK * planes.saturating_sub(1) <= u32::MAX as u64;
    let ifd_at = |k: u64| data_end + IFD_BLOCK * (k - 1); // k ≥ 1

    let xres = rational(1.0 / stack.voxel.x);
    let yres = rational(1.0 / stack.voxel.y);

    let mut tmp = TempFile::create(path)?;
    let io = |e: std::io::Error| fail(format!("cannot write the file: {e}"));
    {
        let mut w = BufWriter::with_capacity(1 << 20, tmp.file());
        w.write_all(b"II\x2a\x00").map_err(io)?;
        w.write_all(&(ifd0 as u32).to_le_bytes()).map_err(io)?;

        // First IFD, with the description.
        let next = if planes > 1 && all_ifds { ifd_at(1) } else { 0 };
        let mut entries = base_entries(stack, data_at, plane_bytes, xres_at, yres_at);
        entries.push((270, ASCII, desc_bytes.len() as u32, desc_at as u32));
        entries.sort_by_key(|e| e.0);
        write_ifd(&mut w, &entries, next).map_err(io)?;
        w.write_all(&desc_bytes).map_err(io)?;
        pad(&mut w, xres_at - (desc_at + desc_bytes.len() as u64)).map_err(io)?;
        write_rationals(&mut w, xres, yres).map_err(io)?;
        pad(&mut w, data_at - (yres_at + 8)).map_err(io)?;

        // Pixel data, plane after plane.
        let n = stack.plane_len();
        let mut bytes = Vec::with_capacity(n * 4);
        for (k, plane) in stack.data.chunks_exact(n).enumerate() {
            if progress.cancelled() {
                return Err(Error::Cancelled);
            }
            bytes.clear();
            bytes.extend(plane.iter().flat_map(|v| v.to_le_bytes()));
            w.write_all(&bytes).map_err(io)?;
            progress.fraction((k + 1) as f32 / planes as f32);
        }

        // The other IFDs.
        if all_ifds {
            for k in 1..planes {
                let at = ifd_at(k);
                let next = if k + 1 < planes { ifd_at(k + 1) } else { 0 };
                let rat = at + IFD_LEN;
                let entries =
                    base_entries(stack, data_at + k * plane_bytes, plane_bytes, rat, rat + 8);
                write_ifd(&mut w, &entries, next).map_err(io)?;
                write_rationals(&mut w, xres, yres).map_err(io)?;
            }
        }
        w.flush().map_err(io)?;
    }
    tmp.persist(path)
}

type Entry = (u16, u16, u32, u32);

/// The tags every page has (sorted by tag, as TIFF requires).
fn base_entries(
    stack: &Hyperstack,
    data_at: u64,
    plane_bytes: u64,
    xres_at: u64,
    yres_at: u64,
) -> Vec<Entry> {
    vec![
        (254, LONG, 1, 0),                   // NewSubfileType
        (256, LONG, 1, stack.width as u32),  // ImageWidth
        (257, LONG, 1, stack.height as u32), // ImageLength
        (258, SHORT, 1, 32),                 // BitsPerSample
        (259, SHORT, 1, 1),                  // Compression: none
        (262, SHORT, 1, 1),                  // Photometric: BlackIsZero
        (273, LONG, 1, data_at as u32),      // StripOffsets
        (277, SHORT, 1, 1),                  // SamplesPerPixel
        (278, LONG, 1, stack.height as u32), // RowsPerStrip
        (279, LONG, 1, plane_bytes as u32),  // StripByteCounts
        (282, RATIONAL, 1, xres_at as u32),  // XResolution
        (283, RATIONAL, 1, yres_at as u32),  // YResolution
        (296, SHORT, 1, 1),                  // ResolutionUnit: none
        (339, SHORT, 1, 3),                  // SampleFormat: IEEE float
    ]
}

fn write_ifd(w: &mut impl Write, entries: &[Entry], next: u64) -> std::io::Result<()> {
    w.write_all(&(entries.len() as u16).to_le_bytes())?;
    for &(tag, typ, count, value) in entries {
        w.write_all(&tag.to_le_bytes())?;
        w.write_all(&typ.to_le_bytes())?;
        w.write_all(&count.to_le_bytes())?;
        if typ == SHORT {
            w.write_all(&(value as u16).to_le_bytes())?;
            w.write_all(&[0, 0])?;
        } else {
            w.write_all(&value.to_le_bytes())?;
        }
    }
    w.write_all(&(next as u32).to_le_bytes())
}

fn write_rationals(w: &mut impl Write, x: (u32, u32), y: (u32, u32)) -> std::io::Result<()> {
    for v in [x.0, x.1, y.0, y.1] {
        w.write_all(&v.to_le_bytes())?;
    }
    Ok(())
}

fn pad(w: &mut impl Write, n: u64) -> std::io::Result<()> {
    w.write_all(&vec![0u8; n as usize])
}

fn even(x: u64) -> u64 {
    x + (x & 1)
}

/// Smallest and largest finite value (0, 0 when there is none), ImageJ's display range.
fn finite_range(data: &[f32]) -> (f64, f64) {
    let (lo, hi) = data
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        (0.0, 0.0)
    } else {
        (lo as f64, hi as f64)
    }
}
