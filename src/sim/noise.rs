//! The noise level of the raw data and the automatic Wiener parameter.
//!
//! The widefield image (mean of a plane's frames) has the spectrum D(k) = H(k)·S(k) + noise.
//! Photon and camera noise is white, so its power per spectral value N is measured beyond the
//! OTF cutoff (|k| > 1.05 k_c), where there is no signal. The Wiener parameter that balances
//! noise and signal for one band is w²(k) = N / P_S(k), P_S(k) = (|D(k)|² − N) / H(k)², the
//! object's power spectrum; it grows with k. Its value at the middle of the widefield band,
//! q = the median of N·H(k)² / (|D(k)|² − N) over 0.4 k_c ≤ |k| ≤ 0.6 k_c, measures how noisy
//! the data are; the Wiener parameter is the power law w = [`WIENER_SCALE`]·q^[`WIENER_EXPONENT`]
//! (w grows more slowly than √q because the constant w must serve every frequency, and the
//! bands ±1, weaker by m/2, are noisier than band 0). Scale and exponent were fitted on
//! Fluorecon's own simulator (`fluorecon simulate-sim`, 256², 80, 300 and 3000 photons, seeds
//! 1–2, zero-order attenuation on: the w of the best PSNR against the truth was 0.1 at
//! q ≈ 1e-4, 0.2–0.4 at q ≈ 5e-3, ≥ 0.8 at q ≈ 0.12) and are checked on an independent
//! simulator (bench/sim_generate.py, BENCHMARKS.md).

use super::otf::{freq, Otf, SimOptics};
use crate::fft::{Complex32, Fft2};

/// w = WIENER_SCALE · q^WIENER_EXPONENT, q the noise-to-signal ratio at half the cutoff.
pub const WIENER_SCALE: f64 = 1.3;
/// See [`WIENER_SCALE`].
pub const WIENER_EXPONENT: f64 = 0.28;
/// The automatic Wiener parameter stays within these bounds.
pub const WIENER_RANGE: (f64, f64) = (0.02, 1.5);

/// The noise-to-signal ratio q = median N·H²/(|D|² − N) over 0.4–0.6 k_c of the mean of
/// `frames` ((ny, nx) each, background-subtracted and tapered).
pub fn noise_to_signal(
    frames: &[&[f32]],
    (ny, nx): (usize, usize),
    optics: &SimOptics,
    otf: &Otf,
) -> f64 {
    let mut spec: Vec<Complex32> = vec![Complex32::default(); ny * nx];
    let scale = 1.0 / frames.len() as f32;
    for f in frames {
        for (s, &v) in spec.iter_mut().zip(f.iter()) {
            s.re += v * scale;
        }
    }
    Fft2::new(ny, nx).forward(&mut spec);
    let p = optics.pixel_size_um();
    let kc = optics.cutoff_per_um();
    let (mut noise, mut noise_n) = (0f64, 0usize);
    let mut ring = Vec::new();
    for j in 0..ny {
        let fy = freq(j, ny, p);
        for i in 0..nx {
            let k = freq(i, nx, p).hypot(fy) / kc;
            let power = spec[j * nx + i].norm_sqr() as f64;
            if k > 1.05 {
                noise += power;
                noise_n += 1;
            } else if (0.4..=0.6).contains(&k) {
                ring.push((power, otf.value(k * kc)));
            }
        }
    }
    if noise_n == 0 || ring.is_empty() {
        return 0.0;
    }
    let noise = noise / noise_n as f64;
    let mut q: Vec<f64> = ring
        .iter()
        .map(|&(power, h)| noise * h * h / (power - noise).max(noise * 1e-3))
        .collect();
    let mid = q.len() / 2;
    *q.select_nth_unstable_by(mid, f64::total_cmp).1
}

/// The automatic Wiener parameter for a noise-to-signal ratio `q` ([`noise_to_signal`]).
pub fn auto_wiener(q: f64) -> f64 {
    (WIENER_SCALE * q.max(0.0).powf(WIENER_EXPONENT)).clamp(WIENER_RANGE.0, WIENER_RANGE.1)
}
