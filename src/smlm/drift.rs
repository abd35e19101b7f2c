//! Drift correction by cross-correlation of time blocks (as ThunderSTORM and Picasso's
//! "undrift by RCC", in its simple form): the localizations are split into blocks of
//! consecutive frames, each block is binned into an image (`bin_nm` pixels, blurred by one
//! bin), and the shift of each block against the first is the peak of their
//! cross-correlation, refined to sub-bin precision by a parabola through the peak and its
//! neighbours. The drift at each frame is interpolated linearly between block centres.

use super::Localization;
use crate::fft::Fft2;
use crate::fft::{next_fast_len, Complex32};
use crate::progress::{check_cancel, Progress};
use crate::{invalid, Result};

/// Settings of [`estimate_drift`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DriftOptions {
    /// Frames per time block.
    pub frames_per_block: u32,
    /// Bin size of the block images, nm.
    pub bin_nm: f64,
    /// Largest drift searched, nm.
    pub max_drift_nm: f64,
}

impl Default for DriftOptions {
    fn default() -> Self {
        DriftOptions {
            frames_per_block: 1000,
            bin_nm: 20.0,
            max_drift_nm: 1000.0,
        }
    }
}

/// Estimated drift: position of the sample at each frame relative to the first block, nm.
#[derive(Debug, Clone, PartialEq)]
pub struct Drift {
    /// First frame of the curve (frame numbers from 1); entry k is frame `first_frame + k`.
    pub first_frame: u32,
    pub x_nm: Vec<f64>,
    pub y_nm: Vec<f64>,
}

impl Drift {
    /// Drift at `frame` (the nearest end of the curve outside it).
    pub fn at(&self, frame: u32) -> (f64, f64) {
        let k = (frame.saturating_sub(self.first_frame) as usize).min(self.x_nm.len() - 1);
        (self.x_nm[k], self.y_nm[k])
    }

    /// Subtracts the drift from every localization.
    pub fn correct(&self, locs: &mut [Localization]) {
        for l in locs {
            let (dx, dy) = self.at(l.frame);
            l.x_nm = (l.x_nm as f64 - dx) as f32;
            l.y_nm = (l.y_nm as f64 - dy) as f32;
        }
    }
}

/// Estimates the drift of `locs` (see the module doc).
pub fn estimate_drift(
    locs: &[Localization],
    opts: &DriftOptions,
    progress: &mut dyn Progress,
) -> Result<Drift> {
    if !(opts.bin_nm > 0.0 && opts.max_drift_nm > 0.0 && opts.frames_per_block > 0) {
        return invalid!(
            "drift correction needs a positive bin size, search range and block length"
        );
    }
    let Some(first) = locs.iter().map(|l| l.frame).min() else {
        return invalid!("drift correction needs localizations; the table is empty");
    };
    let last = locs.iter().map(|l| l.frame).max().expect("not empty");
    let span = last - first + 1;
    let blocks = span.div_ceil(opts.frames_per_block) as usize;
    if blocks < 2 {
        return invalid!(
            "drift correction compares time blocks: the localizations span {span} frame(s) \
             ({first}–{last}) but a block is {} frames, so there is only one block. Use fewer \
             frames per block (at least 2 blocks are needed)",
            opts.frames_per_block
        );
    }
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for l in locs {
        x0 = x0.min(l.x_nm as f64);
        y0 = y0.min(l.y_nm as f64);
        x1 = x1.max(l.x_nm as f64);
        y1 = y1.max(l.y_nm as f64);
    }
    let pad = opts.max_drift_nm;
    let nx = next_fast_len(((x1 - x0 + 2.0 * pad) / opts.bin_nm).ceil() as usize + 1);
    let ny = next_fast_len(((y1 - y0 + 2.0 * pad) / opts.bin_nm).ceil() as usize + 1);
    if (nx as u64) * (ny as u64) > 1 << 26 {
        return invalid!(
            "drift images would be {nx}×{ny} bins; use a larger bin size than {} nm",
            opts.bin_nm
        );
    }
    let fft = Fft2::new(ny, nx);
    // Gaussian blur of σ = 1 bin, applied in Fourier space.
    let blur: Vec<f32> = (0..ny * nx)
        .map(|p| {
            let f = |k: usize, n: usize| {
                let k = if k > n / 2 {
                    k as f64 - n as f64
                } else {
                    k as f64
                };
                k / n as f64
            };
            let (fy, fx) = (f(p / nx, ny), f(p % nx, nx));
            (-2.0 * std::f64::consts::PI.powi(2) * (fx * fx + fy * fy)).exp() as f32
        })
        .collect();
    let block_image = |b: usize| {
        let lo = first + (b as u32) * opts.frames_per_block;
        let hi = lo + opts.frames_per_block;
        let mut img = vec![Complex32::new(0.0, 0.0); ny * nx];
        let mut n = 0usize;
        for l in locs.iter().filter(|l| l.frame >= lo && l.frame < hi) {
            let i = ((l.x_nm as f64 - x0 + pad) / opts.bin_nm) as usize;
            let j = ((l.y_nm as f64 - y0 + pad) / opts.bin_nm) as usize;
            img[j.min(ny - 1) * nx + i.min(nx - 1)].re += 1.0;
            n += 1;
        }
        fft.forward(&mut img);
        for (v, g) in img.iter_mut().zip(&blur) {
            *v *= *g;
        }
        (img, n)
    };
    let (reference, n_ref) = block_image(0);
    if n_ref == 0 {
        return invalid!(
            "the first time block (frames {first}–{}) has no localizations",
            first + opts.frames_per_block - 1
        );
    }
    let max_shift = (opts.max_drift_nm / opts.bin_nm).ceil() as isize;
    let mut centres = vec![first as f64 + (opts.frames_per_block as f64 - 1.0) / 2.0];
    let (mut dxs, mut dys) = (vec![0.0], vec![0.0]);
    for b in 1..blocks {
        check_cancel(progress)?;
        progress.fraction(b as f32 / blocks as f32);
        let (mut img, n) = block_image(b);
        if n == 0 {
            continue;
        }
        for (v, r) in img.iter_mut().zip(&reference) {
            *v *= r.conj();
        }
        fft.inverse(&mut img);
        let at = |dy: isize, dx: isize| {
            let j = dy.rem_euclid(ny as isize) as usize;
            let i = dx.rem_euclid(nx as isize) as usize;
            img[j * nx + i].re as f64
        };
        let (mut best, mut by, mut bx) = (f64::MIN, 0isize, 0isize);
        for dy in -max_shift..=max_shift {
            for dx in -max_shift..=max_shift {
                let v = at(dy, dx);
                if v > best {
                    best = v;
                    by = dy;
                    bx = dx;
                }
            }
        }
        let parabola = |m: f64, c: f64, p: f64| {
            let d = m - 2.0 * c + p;
            if d < 0.0 {
                (0.5 * (m - p) / d).clamp(-0.5, 0.5)
            } else {
                0.0
            }
        };
        let sx = bx as f64 + parabola(at(by, bx - 1), best, at(by, bx + 1));
        let sy = by as f64 + parabola(at(by - 1, bx), best, at(by + 1, bx));
        let lo = first + (b as u32) * opts.frames_per_block;
        let hi = (lo + opts.frames_per_block - 1).min(last);
        centres.push((lo + hi) as f64 / 2.0);
        dxs.push(sx * opts.bin_nm);
        dys.push(sy * opts.bin_nm);
    }
    // Linear interpolation between block centres, constant beyond the ends.
    let interp = |f: f64, v: &[f64]| {
        if f <= centres[0] {
            return v[0];
        }
        for k in 1..centres.len() {
            if f <= centres[k] {
                let t = (f - centres[k - 1]) / (centres[k] - centres[k - 1]);
                return v[k - 1] + t * (v[k] - v[k - 1]);
            }
        }
        v[v.len() - 1]
    };
    let frames: Vec<f64> = (first..=last).map(|f| f as f64).collect();
    // Relative to the first block's centre, which is where the block images were aligned.
    Ok(Drift {
        first_frame: first,
        x_nm: frames.iter().map(|&f| interp(f, &dxs)).collect(),
        y_nm: frames.iter().map(|&f| interp(f, &dys)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smlm::synthetic::{simulate_smlm, SmlmSimOptions};
    use crate::NoProgress;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    /// A known linear drift added to simulated ground truth (with 10 nm localization noise)
    /// is found within a few nm and removed.
    #[test]
    fn finds_a_linear_drift() {
        let sim = simulate_smlm(&SmlmSimOptions {
            active_per_frame: 10.0,
            ..SmlmSimOptions::low_density(1000)
        })
        .unwrap();
        let noise = Normal::new(0.0, 10.0).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let drift = |f: u32| (0.3 * f as f64, -0.16 * f as f64); // nm per frame
        let mut locs: Vec<Localization> = sim
            .truth
            .iter()
            .map(|t| {
                let (dx, dy) = drift(t.frame);
                Localization {
                    frame: t.frame,
                    x_nm: (t.x_nm + dx + noise.sample(&mut rng)) as f32,
                    y_nm: (t.y_nm + dy + noise.sample(&mut rng)) as f32,
                    ..Localization::default()
                }
            })
            .collect();
        let opts = DriftOptions {
            frames_per_block: 200,
            ..DriftOptions::default()
        };
        let d = estimate_drift(&locs, &opts, &mut NoProgress).unwrap();
        // The curve is relative to the first block's centre (frame 100.5).
        let (rx, ry) = drift(100);
        let mut worst: f64 = 0.0;
        for f in (100..=900).step_by(25) {
            let (ex, ey) = d.at(f);
            let (tx, ty) = drift(f);
            worst = worst
                .max((ex - (tx - rx)).abs())
                .max((ey - (ty - ry)).abs());
        }
        eprintln!("drift error up to {worst:.2} nm");
        assert!(
            worst < 5.0,
            "drift error up to {worst} nm (total drift 300 nm)"
        );
        // Beyond the last block's centre (frame 900.5) the drift is held: 0.3 nm × 800 frames.
        let (x_last, _) = d.at(1000);
        assert!((x_last - 240.0).abs() < 5.0, "{x_last}");
        let before = locs[0];
        d.correct(&mut locs);
        let (dx, _) = d.at(before.frame);
        assert!((locs[0].x_nm as f64 - (before.x_nm as f64 - dx)).abs() < 1e-3);
        // Too few frames for two blocks: a clear message.
        let one = &locs[..3.min(locs.len())];
        let single: Vec<Localization> = one
            .iter()
            .map(|l| Localization { frame: 1, ..*l })
            .collect();
        let e = estimate_drift(&single, &opts, &mut NoProgress)
            .unwrap_err()
            .to_string();
        assert!(e.contains("only one block"), "{e}");
    }
}
