//! What one Richardson–Lucy job needs in memory, and the non-circulant path for a volume that
//! does not fit: overlapping lateral tiles, each deconvolved with a margin of one PSF size.

use super::rl::{deconvolve_volume, RlOptions};
use crate::device::GpuSlot;
use crate::fft::{next_fast_even_len, next_fast_len};
use crate::progress::{Progress, SubProgress};
use crate::{Error, Result, Volume};
use ndarray::{s, Array3, ArrayView3};

/// Number of volume-sized f32 buffers one run holds at most (x, y, Hx/ratio, correction,
/// normalisation, the complex half spectrum and the OTF count as one each, two more for
/// acceleration), used for the memory estimate.
const BUFFERS: u64 = 10;

/// Non-circulant RL of a volume too large for `budget`, in k × k lateral tiles (the smallest
/// k that fits). Each tile is deconvolved with a margin of one PSF size around its core,
/// where the non-circulant model lets the object extend; only the core is kept.
#[allow(clippy::too_many_arguments)]
pub(super) fn deconvolve_tiled(
    data: ArrayView3<f32>,
    kernel: &Array3<f32>,
    image: &Volume,
    opts: &RlOptions,
    gpu: &mut GpuSlot,
    progress: &mut dyn Progress,
    budget: u64,
    too_big: Error,
) -> Result<(Array3<f32>, usize, Vec<String>)> {
    let m = data.dim();
    let p = kernel.dim();
    let (oy, ox) = (p.1, p.2);
    let padded = |n: usize, k: usize| if k > 1 { next_fast_len(n + k - 1) } else { n };
    let tiles = (2..=m.1.max(m.2))
        .find(|&k| {
            let ext_y = (m.1.div_ceil(k) + 2 * oy).min(m.1);
            let ext_x = (m.2.div_ceil(k) + 2 * ox).min(m.2);
            let grid_x = if p.2 > 1 {
                next_fast_even_len(ext_x + p.2 - 1)
            } else {
                ext_x
            };
            let grid = (padded(m.0, p.0), padded(ext_y, p.1), grid_x);
            check_memory_against(grid, opts, Some(budget)).is_ok()
        })
        .ok_or(too_big)?;
    let msg = format!(
        "the volume does not fit in memory at once: deconvolving it in {tiles}×{tiles} overlapping tiles"
    );
    progress.log(&msg);
    let mut out = Array3::<f32>::zeros(m);
    let mut iterations = 0;
    let (cy, cx) = (m.1.div_ceil(tiles), m.2.div_ceil(tiles));
    for ty in 0..tiles {
        for tx in 0..tiles {
            let (y0, y1) = ((ty * cy).min(m.1), ((ty + 1) * cy).min(m.1));
            let (x0, x1) = ((tx * cx).min(m.2), ((tx + 1) * cx).min(m.2));
            if y0 == y1 || x0 == x1 {
                continue;
            }
            let (ey0, ey1) = (y0.saturating_sub(oy), (y1 + oy).min(m.1));
            let (ex0, ex1) = (x0.saturating_sub(ox), (x1 + ox).min(m.2));
            let tile = data.slice(s![.., ey0..ey1, ex0..ex1]).to_owned();
            let mut part = SubProgress::new(progress, ty * tiles + tx, tiles * tiles);
            let (res, its, _) = deconvolve_volume(&tile, kernel, image, opts, gpu, &mut part)?;
            out.slice_mut(s![.., y0..y1, x0..x1]).assign(&res.slice(s![
                ..,
                y0 - ey0..y1 - ey0,
                x0 - ex0..x1 - ex0
            ]));
            iterations = iterations.max(its);
        }
    }
    Ok((out, iterations, vec![msg]))
}

/// Fails with [`Error::OutOfMemory`] when the buffers for a `grid` would not fit in
/// `available` bytes (None: unknown, no check).
pub(super) fn check_memory_against(
    grid: (usize, usize, usize),
    opts: &RlOptions,
    available: Option<u64>,
) -> Result<()> {
    let voxels = (grid.0 * grid.1 * grid.2) as u64;
    let buffers = BUFFERS + if opts.tv_lambda > 0.0 { 1 } else { 0 };
    let needed = voxels * 4 * buffers;
    match available {
        Some(available) if needed > available => Err(Error::OutOfMemory {
            needed_mib: needed >> 20,
            available_mib: available >> 20,
        }),
        _ => Ok(()),
    }
}
