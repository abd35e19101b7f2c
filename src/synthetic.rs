//! Simulated widefield data with known ground truth, for tests, benchmarks and sample data:
//! beads and filaments, blurred by a PSF, with shot noise.

use crate::fft::{next_fast_even_len, next_fast_len, OtfConvolver};
use crate::psf::Psf;
use crate::{invalid, Result};
use ndarray::{s, Array3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Poisson};

/// A simulated acquisition, all in photons per voxel.
#[derive(Debug, Clone)]
pub struct Simulated {
    /// Ground truth: the object plus the uniform background, i.e. what a perfect
    /// deconvolution returns (a flat background blurs to itself).
    pub truth: Array3<f32>,
    /// Truth blurred by the PSF, no noise.
    pub blurred: Array3<f32>,
    /// `blurred` with Poisson (shot) noise: what the camera records.
    pub noisy: Array3<f32>,
}

/// Parameters of [`widefield`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WidefieldOptions {
    /// Photon count of the brightest voxels of the object.
    pub peak_photons: f32,
    /// Uniform background, photons per voxel.
    pub background: f32,
    /// Seed of the phantom and the noise.
    pub seed: u64,
}

impl Default for WidefieldOptions {
    fn default() -> Self {
        WidefieldOptions {
            peak_photons: 1000.0,
            background: 10.0,
            seed: 1,
        }
    }
}

/// Refuses a simulation of `shape` (nz, ny, nx) voxels that needs `copies` f32 volumes of
/// that size at once when they would not fit in memory (or the size overflows).
pub fn check_volume(shape: (usize, usize, usize), copies: u64) -> Result<()> {
    let (nz, ny, nx) = shape;
    let bytes = (nz as u64)
        .checked_mul(ny as u64)
        .and_then(|v| v.checked_mul(nx as u64))
        .and_then(|v| v.checked_mul(4 * copies));
    crate::memory::check_fits(bytes)
}

/// Simulates beads and filaments of `shape` (nz, ny, nx) imaged through `psf` with shot noise.
/// The object extends beyond the field of view by the PSF's half-size (as in a real sample),
/// so the edges are blurred with light from outside.
pub fn widefield(
    shape: (usize, usize, usize),
    psf: &Psf,
    opts: &WidefieldOptions,
) -> Result<Simulated> {
    let (nz, ny, nx) = shape;
    if nz == 0 || ny < 2 || nx < 2 {
        return invalid!("cannot simulate a {nx}×{ny}×{nz} image");
    }
    if !(opts.peak_photons > 0.0 && opts.background >= 0.0) {
        return invalid!("photons must be positive and the background non-negative");
    }
    let (pz, py, px) = psf.shape();
    let (cz, cy, cx) = (pz / 2, py / 2, px / 2);
    let ext = (nz + 2 * cz, ny + 2 * cy, nx + 2 * cx);
    // The object, the padded grid and its copy, its spectrum (complex, half), the three
    // results.
    check_volume(ext, 8)?;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let mut object = phantom(ext, &mut rng);
    let max = object
        .iter()
        .cloned()
        .fold(0f32, f32::max)
        .max(f32::MIN_POSITIVE);
    object.mapv_inplace(|v| v / max * opts.peak_photons + opts.background);

    // Linear convolution, evaluated on the field of view only: a grid ≥ ext has no
    // wrap-around inside [c, c + n) (the kernel reaches c voxels each way).
    let grid = (
        next_fast_len(ext.0),
        next_fast_len(ext.1),
        next_fast_even_len(ext.2),
    );
    let mut padded = Array3::<f32>::zeros(grid);
    padded
        .slice_mut(s![..ext.0, ..ext.1, ..ext.2])
        .assign(&object);
    let mut conv = OtfConvolver::new(&psf.data, grid);
    let input = padded.as_slice().expect("standard layout").to_vec();
    conv.convolve(&input, padded.as_slice_mut().expect("standard layout"));
    let fov = s![cz..cz + nz, cy..cy + ny, cx..cx + nx];
    let blurred = padded.slice(fov).mapv(|v| v.max(0.0));
    let truth = object.slice(fov).to_owned();
    let noisy = blurred.mapv(|lambda| {
        if lambda > 0.0 {
            Poisson::new(lambda as f64)
                .map(|p| p.sample(&mut rng) as f32)
                .unwrap_or(lambda)
        } else {
            0.0
        }
    });
    Ok(Simulated {
        truth,
        blurred,
        noisy,
    })
}

/// Beads (Gaussian blobs of 0.7–1.5 voxels σ) and filaments (smooth random curves about one
/// voxel thick) in a volume of `shape`, values up to about 1.
pub fn phantom(shape: (usize, usize, usize), rng: &mut ChaCha8Rng) -> Array3<f32> {
    let (nz, ny, nx) = shape;
    let mut obj = Array3::<f32>::zeros(shape);
    let volume = (nz * ny * nx) as f64;
    let three_d = nz > 1;
    let beads = ((volume / if three_d { 4000.0 } else { 300.0 }) as usize).max(3);
    for _ in 0..beads {
        let c = [
            rng.gen_range(0.0..nz as f32),
            rng.gen_range(0.0..ny as f32),
            rng.gen_range(0.0..nx as f32),
        ];
        let sigma = rng.gen_range(0.7f32..1.5);
        let amp = rng.gen_range(0.3f32..1.0);
        splat(&mut obj, c, sigma, amp);
    }
    let filaments = ((ny.max(nx) as f32 / 16.0) as usize).max(2);
    for _ in 0..filaments {
        let mut p = [
            rng.gen_range(0.0..nz as f32),
            rng.gen_range(0.0..ny as f32),
            rng.gen_range(0.0..nx as f32),
        ];
        let mut dir = [
            if three_d {
                rng.gen_range(-0.3f32..0.3)
            } else {
                0.0
            },
            rng.gen_range(-1f32..1.0),
            rng.gen_range(-1f32..1.0),
        ];
        let amp = rng.gen_range(0.2f32..0.6);
        let steps = 4 * (ny + nx);
        for _ in 0..steps {
            // Smoothly turning direction, step 0.5 voxel.
            for d in dir.iter_mut().skip(if three_d { 0 } else { 1 }) {
                *d += rng.gen_range(-0.15f32..0.15);
            }
            let n = (dir[0] * dir[0] + dir[1] * dir[1] + dir[2] * dir[2])
                .sqrt()
                .max(1e-6);
            for (q, d) in p.iter_mut().zip(&dir) {
                *q += 0.5 * d / n;
            }
            if p[1] < -2.0 || p[2] < -2.0 || p[1] > ny as f32 + 2.0 || p[2] > nx as f32 + 2.0 {
                break;
            }
            p[0] = p[0].clamp(0.0, (nz - 1) as f32);
            splat(&mut obj, p, 0.6, amp * 0.3);
        }
    }
    obj.mapv_inplace(|v| v.min(1.0));
    obj
}

/// Adds an isotropic Gaussian blob of peak `amp` and std `sigma` voxels at `c` (z, y, x).
fn splat(obj: &mut Array3<f32>, c: [f32; 3], sigma: f32, amp: f32) {
    let (nz, ny, nx) = obj.dim();
    let r = (3.0 * sigma).ceil() as isize;
    let inv = 1.0 / (2.0 * sigma * sigma);
    let (z0, y0, x0) = (
        c[0].round() as isize,
        c[1].round() as isize,
        c[2].round() as isize,
    );
    let zr = if nz > 1 { r } else { 0 };
    for z in (z0 - zr).max(0)..=(z0 + zr).min(nz as isize - 1) {
        for y in (y0 - r).max(0)..=(y0 + r).min(ny as isize - 1) {
            for x in (x0 - r).max(0)..=(x0 + r).min(nx as isize - 1) {
                let dz = if nz > 1 { z as f32 - c[0] } else { 0.0 };
                let (dy, dx) = (y as f32 - c[1], x as f32 - c[2]);
                obj[[z as usize, y as usize, x as usize]] +=
                    amp * (-(dz * dz + dy * dy + dx * dx) * inv).exp();
            }
        }
    }
}

/// A fluorescence image for denoising tests: the [`phantom`] (beads and filaments) scaled
/// to `peak_photons` above `background` (photons per pixel, noise-free `truth`), and a
/// camera image of it (`noisy`): Poisson shot noise plus Gaussian read noise of
/// `read_noise` photons std, all seeded by `seed`.
pub fn poisson_gaussian(
    shape: (usize, usize, usize),
    peak_photons: f32,
    background: f32,
    read_noise: f32,
    seed: u64,
) -> Result<(Array3<f32>, Array3<f32>)> {
    let (nz, ny, nx) = shape;
    if nz == 0 || ny < 2 || nx < 2 {
        return invalid!("cannot simulate a {nx}×{ny}×{nz} image");
    }
    if !(peak_photons > 0.0 && background >= 0.0 && read_noise >= 0.0) {
        return invalid!("photons must be positive, background and read noise non-negative");
    }
    check_volume(shape, 2)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut truth = phantom(shape, &mut rng);
    let max = truth
        .iter()
        .cloned()
        .fold(0f32, f32::max)
        .max(f32::MIN_POSITIVE);
    truth.mapv_inplace(|v| v / max * peak_photons + background);
    let read = rand_distr::Normal::new(0.0f32, read_noise).expect("finite read noise");
    let noisy = truth.mapv(|lambda| {
        let shot = if lambda > 0.0 {
            Poisson::new(lambda as f64)
                .expect("positive rate")
                .sample(&mut rng) as f32
        } else {
            0.0
        };
        shot + read.sample(&mut rng)
    });
    Ok((truth, noisy))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta_psf() -> Psf {
        let mut d = Array3::zeros((1, 3, 3));
        d[[0, 1, 1]] = 1.0;
        Psf { data: d }
    }

    #[test]
    fn delta_psf_leaves_truth_unblurred() {
        let sim = widefield((1, 40, 50), &delta_psf(), &WidefieldOptions::default()).unwrap();
        let diff = (&sim.truth - &sim.blurred)
            .iter()
            .fold(0f32, |a, &b| a.max(b.abs()));
        assert!(diff < 1e-2, "{diff}");
        let max = sim.truth.iter().cloned().fold(0f32, f32::max);
        assert!(max > 500.0 && max <= 1010.0, "{max}");
    }

    #[test]
    fn noise_is_poisson() {
        let sim = widefield((2, 64, 64), &delta_psf(), &WidefieldOptions::default()).unwrap();
        // For Poisson noise, E[(n − λ)² / λ] = 1.
        let (sum, count) = sim
            .noisy
            .iter()
            .zip(sim.blurred.iter())
            .filter(|(_, &l)| l > 5.0)
            .fold((0.0, 0), |(s, c), (&n, &l)| {
                (s + ((n - l) as f64).powi(2) / l as f64, c + 1)
            });
        let ratio = sum / count as f64;
        assert!((ratio - 1.0).abs() < 0.05, "{ratio}");
    }

    /// `simulate --shape 10000x100000x100000` asked for 376 TiB and aborted.
    #[test]
    fn impossible_sizes_are_refused_before_allocating() {
        let e = poisson_gaussian((10000, 100000, 100000), 100.0, 10.0, 1.0, 1).unwrap_err();
        assert!(matches!(e, crate::Error::OutOfMemory { .. }), "{e:?}");
        let e = widefield(
            (10000, 100000, 100000),
            &delta_psf(),
            &WidefieldOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(e, crate::Error::OutOfMemory { .. }), "{e:?}");
        // A product that overflows 64 bits.
        assert!(check_volume((usize::MAX, usize::MAX, 2), 1).is_err());
        assert!(check_volume((4, 8, 8), 8).is_ok());
    }

    #[test]
    fn same_seed_same_data() {
        let a = widefield((1, 30, 30), &delta_psf(), &WidefieldOptions::default()).unwrap();
        let b = widefield((1, 30, 30), &delta_psf(), &WidefieldOptions::default()).unwrap();
        assert_eq!(a.noisy, b.noisy);
    }
}
