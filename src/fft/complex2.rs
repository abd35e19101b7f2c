//! Complex-to-complex 2D FFT of a (ny, nx) image stored row-major (x fastest), on RustFFT:
//! rows in parallel (rayon), columns in cache-sized blocks gathered into contiguous lines.
//!
//! Frequency order is the usual FFT order (index 0 = zero frequency, then positive, then
//! negative frequencies). The forward transform is unnormalised; the inverse divides by
//! ny·nx, so `inverse(forward(x)) == x`.

use crate::fft::Complex32;
use rayon::prelude::*;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

use crate::parallel::SharedMut;

/// Columns transformed together: 8 complex f32 values are one 64-byte cache line per row.
const BLOCK: usize = 8;

/// Planned forward and inverse 2D transforms of one size.
pub struct Fft2 {
    ny: usize,
    nx: usize,
    row_fwd: Arc<dyn Fft<f32>>,
    row_inv: Arc<dyn Fft<f32>>,
    col_fwd: Arc<dyn Fft<f32>>,
    col_inv: Arc<dyn Fft<f32>>,
}

impl Fft2 {
    /// Plans transforms of images of `ny` rows and `nx` columns.
    pub fn new(ny: usize, nx: usize) -> Self {
        let mut planner = FftPlanner::new();
        Fft2 {
            ny,
            nx,
            row_fwd: planner.plan_fft_forward(nx),
            row_inv: planner.plan_fft_inverse(nx),
            col_fwd: planner.plan_fft_forward(ny),
            col_inv: planner.plan_fft_inverse(ny),
        }
    }

    /// (ny, nx).
    pub fn shape(&self) -> (usize, usize) {
        (self.ny, self.nx)
    }

    /// Number of values, ny·nx.
    pub fn len(&self) -> usize {
        self.ny * self.nx
    }

    /// True for an empty size.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// In-place forward transform (unnormalised).
    pub fn forward(&self, data: &mut [Complex32]) {
        self.transform(data, &self.row_fwd, &self.col_fwd);
    }

    /// In-place inverse transform, divided by ny·nx.
    pub fn inverse(&self, data: &mut [Complex32]) {
        self.transform(data, &self.row_inv, &self.col_inv);
        let scale = 1.0 / self.len() as f32;
        data.par_iter_mut().for_each(|v| *v *= scale);
    }

    fn transform(
        &self,
        data: &mut [Complex32],
        rows: &Arc<dyn Fft<f32>>,
        cols: &Arc<dyn Fft<f32>>,
    ) {
        assert_eq!(data.len(), self.len(), "FFT buffer of the wrong size");
        let (ny, nx) = (self.ny, self.nx);
        lines(data, nx, rows);
        columns(data, ny, nx, cols);
    }
}

/// Transforms consecutive lines of `len` values, several lines per task.
fn lines(data: &mut [Complex32], len: usize, fft: &Arc<dyn Fft<f32>>) {
    let count = data.len() / len;
    let per_task = (count / (4 * rayon::current_num_threads())).max(1);
    data.par_chunks_mut(len * per_task)
        .for_each(|chunk| fft.process(chunk));
}

/// Transforms the columns of an (ny, nx) image in place: blocks of [`BLOCK`] columns are
/// gathered into contiguous lines (one cache line of each row per block), transformed while
/// in cache, and scattered back. No full-size transposed copy.
fn columns(data: &mut [Complex32], ny: usize, nx: usize, fft: &Arc<dyn Fft<f32>>) {
    // each task touches its own columns only
    let base = SharedMut::new(data.as_mut_ptr());
    let blocks = nx.div_ceil(BLOCK);
    (0..blocks).into_par_iter().for_each_init(
        || {
            (
                vec![Complex32::default(); BLOCK * ny],
                vec![Complex32::default(); fft.get_inplace_scratch_len()],
            )
        },
        |(buf, scratch), b| {
            let c0 = b * BLOCK;
            let w = BLOCK.min(nx - c0);
            // SAFETY: block b reads and writes only columns c0..c0 + w of every row; blocks
            // are disjoint and `data` outlives the parallel loop.
            unsafe {
                for r in 0..ny {
                    let row = base.get().add(r * nx + c0);
                    for c in 0..w {
                        *buf.get_unchecked_mut(c * ny + r) = *row.add(c);
                    }
                }
                fft.process_with_scratch(&mut buf[..w * ny], scratch);
                for r in 0..ny {
                    let row = base.get().add(r * nx + c0);
                    for c in 0..w {
                        *row.add(c) = *buf.get_unchecked(c * ny + r);
                    }
                }
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn matches_naive_dft_and_inverts() {
        let (ny, nx) = (6, 10);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let x: Vec<Complex32> = (0..ny * nx)
            .map(|_| Complex32::new(rng.gen_range(-1.0..1.0), rng.gen_range(-1.0..1.0)))
            .collect();
        let fft = Fft2::new(ny, nx);
        let mut y = x.clone();
        fft.forward(&mut y);
        for ky in 0..ny {
            for kx in 0..nx {
                let (mut re, mut im) = (0f64, 0f64);
                for j in 0..ny {
                    for i in 0..nx {
                        let a = -2.0
                            * std::f64::consts::PI
                            * ((ky * j) as f64 / ny as f64 + (kx * i) as f64 / nx as f64);
                        let v = x[j * nx + i];
                        re += v.re as f64 * a.cos() - v.im as f64 * a.sin();
                        im += v.re as f64 * a.sin() + v.im as f64 * a.cos();
                    }
                }
                let got = y[ky * nx + kx];
                assert!((got.re as f64 - re).abs() < 1e-4 && (got.im as f64 - im).abs() < 1e-4);
            }
        }
        fft.inverse(&mut y);
        for (a, b) in x.iter().zip(&y) {
            assert!((a - b).norm() < 1e-5);
        }
    }
}
