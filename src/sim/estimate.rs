//! Per-direction estimation of the illumination pattern from the raw frames: wave vector k₀,
//! phase offset and modulation depth. Cross-correlation of separated bands as in Wicker et
//! al. 2013 and fairSIM (Müller et al. 2016):
//!
//! 1. separate bands B₀, B₊₁ with the nominal equidistant phases 2πp/N;
//! 2. coarse k₀: peak of |Σ_k B₀*(k)·B₊₁(k + s)| over integer shifts s with
//!    0.4·k_c ≤ |s| ≤ 1.15·k_c, with the DC of B₀ damped (computed as the FFT of the
//!    real-space product b₀*·b₊₁);
//! 3. sub-pixel k₀: the OTF-weighted correlation (see 4.) evaluated directly at fractional s
//!    (a phase ramp in real space), four rounds of a 5×5 grid search with steps 0.25, 0.05, 0.01, 0.002 px;
//! 4. with B̃₊₁(k) = B₊₁(k + k₀): c = Σ (B₀·H(k + k₀))*·(B̃₊₁·H(k)) / Σ |B₀·H(k + k₀)|² over the
//!    overlap of both OTF supports away from DC, the white-noise power of B₀ (measured beyond
//!    the OTF cutoff) removed from the denominator; then c = (m/2)·e^{iφ₀}, so the phase of the
//!    first frame at pixel (0, 0) is φ₀ = arg c and the modulation m = 2|c|. The phase is
//!    reported at the image centre, φ₀ + 2πk₀·r_c, which a small k₀ error hardly changes.
//!
//! Units: k₀ in pixels of the Fourier grid ((kx·nx·p, ky·ny·p), FFT index units) and in
//! cycles/µm; angles in degrees from +x towards +y; phases in radians.

use super::bands::{equidistant_phases, separate, shift_spectrum_down};
use super::otf::{freq, Otf, SimOptics};
use crate::fft::Complex32;
use crate::fft::Fft2;
use rayon::prelude::*;
use rustfft::num_complex::Complex64;
use std::f64::consts::PI;

/// Estimated modulations below this fall back to the default (fairSIM's limit).
pub const MIN_MODULATION: f64 = 0.4;
/// Estimated modulations above this are implausible and fall back to the default.
pub const MAX_MODULATION: f64 = 1.1;
/// Below this correlation peak / mean ratio there is no stripe pattern (noise alone gives
/// about 3.6 on a 256² image, clear stripes 20 or more).
pub const MIN_PEAK_RATIO: f64 = 6.0;

/// Warnings about one direction's estimate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParamFlags {
    /// Modulation outside 0.4–1.1: the default modulation was used instead.
    pub low_modulation: bool,
    /// |k₀| outside 0.5–1.1 × the widefield cutoff.
    pub k0_implausible: bool,
    /// The directions are not evenly spaced over 180° (± 5°).
    pub uneven_angles: bool,
    /// No clear correlation peak: this direction shows no stripe pattern.
    pub no_stripes: bool,
    /// |k₀| or the direction disagrees with the other directions (their |k₀| differ by more
    /// than 3 %, or the directions are not evenly spaced) and no candidate peak that agrees
    /// was found: the estimate of this direction is not trusted.
    pub inconsistent: bool,
}

impl ParamFlags {
    /// Whether the estimate of this direction failed: no stripes, an implausible |k₀|, or a
    /// k₀ that disagrees with the other directions. (Low modulation alone is not a failure:
    /// the default modulation is used.)
    pub fn failed(&self) -> bool {
        self.no_stripes || self.k0_implausible || self.inconsistent
    }
}

/// Pattern parameters of one direction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AngleParams {
    /// k₀ in pixels of the Fourier grid, (x, y).
    pub k0_px: [f64; 2],
    /// k₀ in cycles/µm, (x, y).
    pub k0_per_um: [f64; 2],
    /// Direction of k₀, degrees from +x towards +y, in (−180, 180].
    pub angle_deg: f64,
    /// Stripe period 1/|k₀|, nm.
    pub line_spacing_nm: f64,
    /// Pattern phase of the first frame of this direction at the centre pixel
    /// (x, y) = (nx/2, ny/2), radians in (−π, π]. (At the centre a small error of k₀ hardly
    /// changes it; see [`AngleParams::phase_at_origin`].)
    pub phase_rad: f64,
    /// Estimated modulation depth m.
    pub modulation: f64,
    /// Modulation used for reconstruction (the estimate, or the default when flagged).
    pub modulation_used: f64,
    /// Height of the coarse correlation peak over the mean of the search region.
    pub peak_ratio: f64,
    pub flags: ParamFlags,
}

/// Estimates the pattern of one direction from its `frames` (one per equidistant phase,
/// background-subtracted and tapered, (ny, nx) row-major). `default_modulation` replaces
/// implausible modulation estimates. The strongest correlation peak is taken; see
/// [`estimate_directions`] for the estimate of several directions that must agree.
pub fn estimate_angle(
    frames: &[&[f32]],
    (ny, nx): (usize, usize),
    optics: &SimOptics,
    otf: &Otf,
    default_modulation: f64,
) -> AngleParams {
    let search = CoarseSearch::new(frames, (ny, nx), optics, otf);
    let best = search.candidates.first().copied().unwrap_or_default();
    search.refine(best, default_modulation)
}

/// A coarse correlation peak: integer shift (x, y) in Fourier pixels and its height over the
/// mean of the search region.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Candidate {
    pub shift: [isize; 2],
    pub ratio: f64,
}

/// The weight of the bands in the coarse peak search, a function of v = |k|/k_c: 0 at the
/// zero order and in the out-of-focus band (v < 0.15), a cosine rise to 1 at v = 0.3 (the
/// notch that fairSIM and HiFi-SIM use against out-of-focus light), and up to `upper` the
/// inverse square root of the OTF (half whitening, the OTF floored at 0.15) so that the
/// correlation peak is sharp rather than a broad bump of the low frequencies without
/// amplifying the noise near the cutoff much; 0 beyond `upper`. Band 0 is cut at 0.8 k_c
/// (where the OTF is small and band 0 mostly noise), band +1 at k_c (beyond: noise only).
fn search_weight(v: f32, h: f32, upper: f32) -> f32 {
    if !(0.15..upper).contains(&v) {
        return 0.0;
    }
    let notch = if v < 0.3 {
        0.5 - 0.5 * (std::f32::consts::PI * (v - 0.15) / 0.15).cos()
    } else {
        1.0
    };
    notch / h.max(0.15).sqrt()
}

/// The notch against the zero order and out-of-focus light in the phase and modulation
/// estimate: 1 − exp(−v²/(2·0.2²)), v = |k|/k_c, values below v = 0.15 excluded.
fn fit_notch(v: f32) -> f32 {
    if v < 0.15 {
        0.0
    } else {
        1.0 - (-(v * v) / (2.0 * 0.04)).exp()
    }
}

/// Everything the estimate of one direction needs after the coarse search: the bands, the
/// grids and the candidate peaks, strongest first.
pub struct CoarseSearch<'a> {
    // (the bands and grids of one direction)
    fft: Fft2,
    dims: (usize, usize),
    optics: &'a SimOptics,
    otf: &'a Otf,
    b0_spec: Vec<Complex32>,
    b1: Vec<Complex32>,
    kr: Vec<f32>,
    /// |coarse correlation| at every integer shift (FFT order) and its mean over the search
    /// region.
    correlation: Vec<f32>,
    search_mean: f64,
    /// Local maxima of the coarse correlation in the search region (0.4–1.15 k_c), at least
    /// 3 Fourier pixels apart, strongest first (at most 8; [`estimate_directions`] may add
    /// the peaks where the other directions predict one).
    ///
    /// [`estimate_directions`]: super::directions::estimate_directions
    pub candidates: Vec<Candidate>,
}

impl<'a> CoarseSearch<'a> {
    /// Separates the bands and finds the coarse candidate peaks of k₀: |Σ_k W(k)B₀*(k)·W(k + s)
    /// B₊₁(k + s)| over integer shifts s with 0.4·k_c ≤ |s| ≤ 1.15·k_c, W the
    /// [`search_weight`] (computed as the FFT of the real-space product of the weighted bands).
    pub fn new(
        frames: &[&[f32]],
        (ny, nx): (usize, usize),
        optics: &'a SimOptics,
        otf: &'a Otf,
    ) -> Self {
        let fft = Fft2::new(ny, nx);
        let p = optics.pixel_size_um();
        let kc = optics.cutoff_per_um();
        let bands = separate(frames, &equidistant_phases(frames.len(), 0.0));
        // |k| / k_c of every spectral value (computed once; hypot per pixel would dominate).
        let kr = radial_grid(ny, nx, p, kc);
        let h = otf.grid(ny, nx, p, [0.0, 0.0]);
        let b1 = bands.plus;
        let mut b0_spec = bands.zero;
        fft.forward(&mut b0_spec);
        let weight = |upper: f32| -> Vec<f32> {
            kr.iter()
                .zip(&h)
                .map(|(&v, &h)| search_weight(v, h, upper))
                .collect()
        };
        let mut w0 = b0_spec.clone();
        w0.par_iter_mut()
            .zip(&weight(0.8))
            .for_each(|(v, &w)| *v *= w);
        fft.inverse(&mut w0);
        let mut w1 = b1.clone();
        fft.forward(&mut w1);
        w1.par_iter_mut()
            .zip(&weight(1.0))
            .for_each(|(v, &w)| *v *= w);
        fft.inverse(&mut w1);
        let mut cc: Vec<Complex32> = w0.iter().zip(&w1).map(|(a, b)| a.conj() * b).collect();
        fft.forward(&mut cc);
        let mag: Vec<f32> = cc.iter().map(|c| c.norm()).collect();
        let (mut sum, mut count) = (0f64, 0usize);
        let mut maxima = Vec::new();
        let at = |i: isize, j: isize| -> f32 {
            mag[(j.rem_euclid(ny as isize) as usize) * nx + i.rem_euclid(nx as isize) as usize]
        };
        for j in 0..ny {
            for i in 0..nx {
                let k = kr[j * nx + i];
                if (0.4..=1.15).contains(&k) {
                    let v = mag[j * nx + i];
                    sum += v as f64;
                    count += 1;
                    let (si, sj) = (
                        super::otf::signed_index(i, nx),
                        super::otf::signed_index(j, ny),
                    );
                    let is_max = (-1..=1).all(|dj| {
                        (-1..=1).all(|di| (di == 0 && dj == 0) || at(si + di, sj + dj) < v)
                    });
                    if is_max {
                        maxima.push(([si, sj], v as f64));
                    }
                }
            }
        }
        let mean = (sum / count.max(1) as f64).max(f64::MIN_POSITIVE);
        let search_mean = mean;
        maxima.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut candidates: Vec<Candidate> = Vec::new();
        for (shift, v) in maxima {
            let near = candidates
                .iter()
                .any(|c| (c.shift[0] - shift[0]).abs() <= 3 && (c.shift[1] - shift[1]).abs() <= 3);
            if !near {
                candidates.push(Candidate {
                    shift,
                    ratio: v / mean,
                });
            }
            if candidates.len() == 8 {
                break;
            }
        }
        CoarseSearch {
            fft,
            dims: (ny, nx),
            optics,
            otf,
            b0_spec,
            b1,
            kr,
            correlation: mag,
            search_mean,
            candidates,
        }
    }

    /// The highest coarse correlation value within ±3 Fourier pixels of `shift` (x, y;
    /// Fourier pixels) inside the search region, as a candidate (used where the other
    /// directions predict this direction's peak).
    pub fn peak_near(&self, shift: [f64; 2]) -> Option<Candidate> {
        let (ny, nx) = self.dims;
        let (cx, cy) = (shift[0].round() as isize, shift[1].round() as isize);
        let mut best: Option<Candidate> = None;
        for dy in -3..=3 {
            for dx in -3..=3 {
                let (sx, sy) = (cx + dx, cy + dy);
                let (i, j) = (
                    sx.rem_euclid(nx as isize) as usize,
                    sy.rem_euclid(ny as isize) as usize,
                );
                if !(0.4..=1.15).contains(&self.kr[j * nx + i]) {
                    continue;
                }
                let ratio = self.correlation[j * nx + i] as f64 / self.search_mean;
                if best.is_none_or(|b| ratio > b.ratio) {
                    best = Some(Candidate {
                        shift: [sx, sy],
                        ratio,
                    });
                }
            }
        }
        best
    }

    /// Sub-pixel k₀, phase and modulation from the coarse peak `coarse`.
    pub fn refine(&self, coarse: Candidate, default_modulation: f64) -> AngleParams {
        let (ny, nx) = self.dims;
        let (fft, optics, otf, kr) = (&self.fft, self.optics, self.otf, &self.kr);
        let p = optics.pixel_size_um();
        let kc = optics.cutoff_per_um();
        let best = (coarse.shift[0], coarse.shift[1]);
        let peak_ratio = coarse.ratio;
        let b0_spec = self.b0_spec.clone();
        let b1 = self.b1.clone();
        // Sub-pixel refinement of the OTF-weighted overlap: with X(k) = B₀(k)·N(k)·H(k)·H(k + k₀c)
        // (k₀c the coarse peak, N the notch of the search weight) and B₊₁ cut at the OTF cutoff,
        // |Σ_k X*(k)·B₊₁(k + s)| is largest at s = k₀ and equals |Σ_r x*(r)·b₊₁(r)·e^{−2πi s·r}|:
        // no FFT per trial shift.
        let mut k = [best.0 as f64, best.1 as f64];
        let kc_um = [k[0] / (nx as f64 * p), k[1] / (ny as f64 * p)];
        let mut weighted0 = b0_spec.clone();
        let h = otf.grid(ny, nx, p, [0.0, 0.0]);
        let hs = otf.grid(ny, nx, p, [-kc_um[0], -kc_um[1]]);
        weighted0.par_iter_mut().enumerate().for_each(|(i, v)| {
            let notch = search_weight(kr[i].min(0.5), 1.0, 1.0);
            *v *= notch * h[i] * hs[i]
        });
        fft.inverse(&mut weighted0);
        let mut cut1 = b1.clone();
        fft.forward(&mut cut1);
        cut1.par_iter_mut()
            .zip(kr.par_iter())
            .for_each(|(v, &r)| *v *= if r < 1.0 { 1.0 } else { 0.0 });
        fft.inverse(&mut cut1);
        let product: Vec<Complex32> = weighted0
            .iter()
            .zip(&cut1)
            .map(|(a, b)| a.conj() * b)
            .collect();
        let product = &product;
        let mut step = 0.25;
        for _ in 0..4 {
            let centre = k;
            let grid = correlation_grid(product, ny, nx, centre, step);
            let (mut top, mut best_s) = (-1.0, centre);
            for (dy, row) in grid.iter().enumerate() {
                for (dx, v) in row.iter().enumerate() {
                    if v.norm() > top {
                        top = v.norm();
                        best_s = [
                            centre[0] + (dx as f64 - 2.0) * step,
                            centre[1] + (dy as f64 - 2.0) * step,
                        ];
                    }
                }
            }
            k = best_s;
            step /= 5.0;
        }
        let k0_per_um = [k[0] / (nx as f64 * p), k[1] / (ny as f64 * p)];

        // Phase and modulation from the OTF-weighted overlap of band 0 and shifted band +1.
        let spec0 = b0_spec;
        let mut shifted = b1;
        shift_spectrum_down(&mut shifted, nx, [k[0] / nx as f64, k[1] / ny as f64]);
        fft.forward(&mut shifted);
        // White-noise power per spectral value of band 0, from beyond the OTF support; it is
        // removed from the denominator, which would otherwise bias the modulation low.
        let (mut noise, mut noise_n) = (0f64, 0usize);
        for (v, &r) in spec0.iter().zip(kr.iter()) {
            if r > 1.05 {
                noise += v.norm_sqr() as f64;
                noise_n += 1;
            }
        }
        let noise = if noise_n > 0 {
            noise / noise_n as f64
        } else {
            0.0
        };
        let hs = otf.grid(ny, nx, p, [-k0_per_um[0], -k0_per_um[1]]);
        let (mut num, mut den) = (Complex64::default(), 0f64);
        for idx in 0..ny * nx {
            {
                let (hk, hsk) = (h[idx], hs[idx]);
                let notch = fit_notch(kr[idx]);
                if notch == 0.0 || hk < 0.02 || hsk < 0.02 {
                    continue;
                }
                let a = spec0[idx] * hsk;
                let b = shifted[idx] * hk;
                let prod = a.conj() * b * notch * notch;
                num += Complex64::new(prod.re as f64, prod.im as f64);
                den += (spec0[idx].norm_sqr() as f64 - noise) * (hsk * hsk * notch * notch) as f64;
            }
        }
        let c = num / den.max(f64::MIN_POSITIVE);
        let modulation = 2.0 * c.norm();
        let k0_abs = k0_per_um[0].hypot(k0_per_um[1]);
        let no_stripes = peak_ratio < MIN_PEAK_RATIO;
        let low_modulation = !(MIN_MODULATION..=MAX_MODULATION).contains(&modulation);
        AngleParams {
            k0_px: k,
            k0_per_um,
            angle_deg: k0_per_um[1].atan2(k0_per_um[0]).to_degrees(),
            line_spacing_nm: 1000.0 / k0_abs.max(f64::MIN_POSITIVE),
            phase_rad: wrap(c.arg() + centre_phase(k, (ny, nx))),
            modulation,
            modulation_used: if low_modulation {
                default_modulation
            } else {
                modulation
            },
            peak_ratio,
            flags: ParamFlags {
                low_modulation,
                k0_implausible: !(0.5..=1.1).contains(&(k0_abs / kc)),
                uneven_angles: false,
                no_stripes,
                inconsistent: false,
            },
        }
    }
}

impl AngleParams {
    /// Pattern phase of the first frame at pixel (0, 0) of an (ny, nx) image, radians.
    pub fn phase_at_origin(&self, (ny, nx): (usize, usize)) -> f64 {
        wrap(self.phase_rad - centre_phase(self.k0_px, (ny, nx)))
    }
}

/// 2π k₀·r_c: the pattern phase advance from pixel (0, 0) to the centre (nx/2, ny/2).
pub(crate) fn centre_phase(k0_px: [f64; 2], (ny, nx): (usize, usize)) -> f64 {
    2.0 * PI * (k0_px[0] * (nx / 2) as f64 / nx as f64 + k0_px[1] * (ny / 2) as f64 / ny as f64)
}

/// An angle in (−π, π].
fn wrap(a: f64) -> f64 {
    let w = a.rem_euclid(2.0 * PI);
    if w > PI {
        w - 2.0 * PI
    } else {
        w
    }
}

/// The band correlation Σ_r p(r)·e^{−2πi(sx·x/nx + sy·y/ny)} on the 5×5 grid of shifts
/// s = centre + (dx − 2, dy − 2)·step (Fourier pixels), indexed [dy][dx]. Separable: the row
/// sums for the five sx are formed once (5·ny·nx products), then combined for the five sy.
fn correlation_grid(
    product: &[Complex32],
    ny: usize,
    nx: usize,
    centre: [f64; 2],
    step: f64,
) -> [[Complex64; 5]; 5] {
    let ramp = |s: f64, n: usize| -> Vec<Complex32> {
        (0..n)
            .map(|i| {
                let e = Complex64::from_polar(1.0, -2.0 * PI * s * i as f64 / n as f64);
                Complex32::new(e.re as f32, e.im as f32)
            })
            .collect()
    };
    let ex: Vec<Vec<Complex32>> = (0..5)
        .map(|d| ramp(centre[0] + (d as f64 - 2.0) * step, nx))
        .collect();
    let ex_re: Vec<Vec<f32>> = ex
        .iter()
        .map(|e| e.iter().map(|c| c.re).collect())
        .collect();
    let ex_im: Vec<Vec<f32>> = ex
        .iter()
        .map(|e| e.iter().map(|c| c.im).collect())
        .collect();
    // Row sums in f32 (nx terms, split real/imaginary so that they vectorise), the sums over
    // rows in f64.
    let rows: Vec<[Complex64; 5]> = product
        .par_chunks(nx)
        .map(|row| {
            let re: Vec<f32> = row.iter().map(|c| c.re).collect();
            let im: Vec<f32> = row.iter().map(|c| c.im).collect();
            let mut acc = [Complex64::default(); 5];
            for (a, (er, ei)) in acc.iter_mut().zip(ex_re.iter().zip(&ex_im)) {
                let (r, i) = complex_dot(&re, &im, er, ei);
                *a = Complex64::new(r as f64, i as f64);
            }
            acc
        })
        .collect();
    let mut out = [[Complex64::default(); 5]; 5];
    for (dy, out_row) in out.iter_mut().enumerate() {
        let sy = centre[1] + (dy as f64 - 2.0) * step;
        for (y, r) in rows.iter().enumerate() {
            let ey = Complex64::from_polar(1.0, -2.0 * PI * sy * y as f64 / ny as f64);
            for (o, v) in out_row.iter_mut().zip(r) {
                *o += v * ey;
            }
        }
    }
    out
}

/// Σ (a_re + i·a_im)(b_re + i·b_im) over equal-length slices, with 16 partial sums per
/// component so that the loop vectorises.
fn complex_dot(a_re: &[f32], a_im: &[f32], b_re: &[f32], b_im: &[f32]) -> (f32, f32) {
    const L: usize = 16;
    let (mut sr, mut si) = ([0f32; L], [0f32; L]);
    let n = a_re.len() / L * L;
    for c in (0..n).step_by(L) {
        let (ar, ai, br, bi) = (
            &a_re[c..c + L],
            &a_im[c..c + L],
            &b_re[c..c + L],
            &b_im[c..c + L],
        );
        for l in 0..L {
            sr[l] += ar[l] * br[l] - ai[l] * bi[l];
            si[l] += ar[l] * bi[l] + ai[l] * br[l];
        }
    }
    let (mut r, mut i) = (sr.iter().sum::<f32>(), si.iter().sum::<f32>());
    for c in n..a_re.len() {
        r += a_re[c] * b_re[c] - a_im[c] * b_im[c];
        i += a_re[c] * b_im[c] + a_im[c] * b_re[c];
    }
    (r, i)
}

/// |k| / `kc` of every value of an (ny, nx) FFT grid of `p` µm pixels, row-major.
fn radial_grid(ny: usize, nx: usize, p: f64, kc: f64) -> Vec<f32> {
    let fx: Vec<f64> = (0..nx).map(|i| (freq(i, nx, p) / kc).powi(2)).collect();
    let mut out = vec![0f32; ny * nx];
    out.par_chunks_mut(nx).enumerate().for_each(|(j, row)| {
        let fy = (freq(j, ny, p) / kc).powi(2);
        for (v, &f) in row.iter_mut().zip(&fx) {
            *v = (f + fy).sqrt() as f32;
        }
    });
    out
}

/// Flags every direction when the directions are not evenly spaced over 180° (± 5°).
pub fn flag_uneven_angles(params: &mut [AngleParams]) {
    let n = params.len();
    if n < 2 {
        return;
    }
    let mut a: Vec<f64> = params
        .iter()
        .map(|p| p.angle_deg.rem_euclid(180.0))
        .collect();
    a.sort_by(f64::total_cmp);
    let expected = 180.0 / n as f64;
    let uneven = (0..n).any(|i| {
        let next = if i + 1 < n { a[i + 1] } else { a[0] + 180.0 };
        (next - a[i] - expected).abs() > 5.0
    });
    for p in params.iter_mut() {
        p.flags.uneven_angles = uneven;
    }
}

#[cfg(test)]
mod tests {
    use super::super::synthetic::{simulate_sim, SimAcquisition};
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn five_phases_two_angles_estimated() {
        // 5 phases (pseudo-inverse with more phases than bands), 2 directions, m = 0.6.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let obj = crate::synthetic::phantom((1, 256, 256), &mut rng);
        let obj = obj.index_axis(ndarray::Axis(0), 0).to_owned();
        let optics = SimOptics::default();
        let acq = SimAcquisition {
            angles: 2,
            phases: 5,
            modulation: 0.6,
            photons: 2000.0,
            background: 0.0,
            seed: 4,
            ..Default::default()
        };
        let data = simulate_sim(&obj, &optics, &acq).unwrap();
        let otf = Otf::new(&optics, 0.3);
        let tapered: Vec<Vec<f32>> = data
            .raw
            .data
            .outer_iter()
            .map(|f| super::super::stack::preprocess(f, 0.0, 12))
            .collect();
        let frames: Vec<&[f32]> = tapered.iter().map(|f| f.as_slice()).collect();
        let mut params: Vec<AngleParams> = (0..2)
            .map(|a| estimate_angle(&frames[5 * a..5 * a + 5], (256, 256), &optics, &otf, 0.7))
            .collect();
        for (e, t) in params.iter().zip(&data.truth) {
            let dk = (e.k0_px[0] - t.k0_px[0]).hypot(e.k0_px[1] - t.k0_px[1]);
            let dphi = (e.phase_rad - t.phase_rad + PI).rem_euclid(2.0 * PI) - PI;
            println!(
                "dk {dk} dphi {dphi} m {} ratio {}",
                e.modulation, e.peak_ratio
            );
            assert!(dk < 0.05, "{:?} vs {:?}", e.k0_px, t.k0_px);
            assert!(dphi.abs() < 0.05, "{} vs {}", e.phase_rad, t.phase_rad);
            assert!((e.modulation - 0.6).abs() < 0.05, "{}", e.modulation);
            assert_eq!(e.flags, ParamFlags::default());
        }
        // 2 directions 90° apart are even; bend one by 20° and they are not.
        flag_uneven_angles(&mut params);
        assert!(!params[0].flags.uneven_angles);
        params[1].angle_deg += 20.0;
        flag_uneven_angles(&mut params);
        assert!(params[0].flags.uneven_angles && params[1].flags.uneven_angles);
    }
}
