//! Wiener reconstruction of 2D SIM (Gustafsson 2000; filter and apodisation as in fairSIM,
//! Müller et al. 2016).
//!
//! For each direction the bands are separated with the estimated phases φ + 2πp/N, bands ±1
//! divided by m/2, every band zero-padded into a 2× Fourier grid, bands ±1 moved to their
//! true position by ∓k₀ (a phase ramp in real space on the 2× grid, so sub-pixel k₀ is exact;
//! band −1 is the mirror image of band +1, conj(D₊₁(−k)), and costs no FFT) and weighted
//! with the conjugate shifted OTF H(k ± k₀). Then
//!
//! Ŝ(k) = A(k) · Σ_{a,b} H_{a,b}(k)*·D̃_{a,b}(k) / (Σ_{a,b} |H_{a,b}(k)|² + w²),
//!
//! with A the ideal OTF of cutoff `apodization_cutoff` × k_c raised to `apodization_bend`.
//! The result is the real part of the inverse FFT, clipped at 0, on pixels half the raw size.
//! Intensities keep the scale of one raw frame (photons, background removed).

use super::bands::{equidistant_phases, separate_weighted, separation_weights, zero_pad};
use super::estimate::AngleParams;
use super::otf::{apodization, Otf, SimOptics};
use crate::fft::Complex32;
use crate::fft::Fft2;
use rayon::prelude::*;

/// Filter settings of [`wiener_sim`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WienerSettings {
    /// Wiener parameter w (w² is added to the denominator).
    pub wiener: f64,
    /// Apodisation cutoff as a multiple of the widefield cutoff k_c (SIM).
    pub apodization_cutoff: f64,
    /// Exponent of the apodisation function.
    pub apodization_bend: f64,
    /// Zero-order attenuation: every band's OTF is multiplied by 1 − s·exp(−k²/(2σ²)) around
    /// its own zero frequency (s this strength, 0 = off), so that out-of-focus light, which
    /// sits at low frequencies of band 0, is replaced by the shifted bands ±1 there.
    pub zero_order_strength: f64,
    /// Full width at half maximum of the zero-order attenuation, cycles/µm (σ = FWHM/2.355).
    pub zero_order_fwhm_per_um: f64,
}

impl WienerSettings {
    /// The apodisation cutoff in cycles/µm: `apodization_cutoff` × k_c, or, when it is 0,
    /// the real SIM support k_c + the largest |k₀| of `params`.
    pub fn apodization_cutoff_per_um(&self, kc: f64, params: &[AngleParams]) -> f64 {
        if self.apodization_cutoff > 0.0 {
            return self.apodization_cutoff * kc;
        }
        let k0 = params
            .iter()
            .map(|p| p.k0_per_um[0].hypot(p.k0_per_um[1]))
            .fold(0.0, f64::max);
        kc + k0
    }
}

/// Images on the 2× grid (2ny, 2nx), row-major.
pub struct Reconstruction {
    /// SIM image.
    pub sim: Vec<f32>,
    /// Mean of all frames, Fourier-interpolated to the 2× grid.
    pub widefield: Vec<f32>,
    /// Widefield Wiener-filtered with the same w, apodised at k_c.
    pub wiener_widefield: Vec<f32>,
}

/// Keeps intensities when a spectrum is zero-padded into 4× as many pixels.
pub(crate) const UPSCALE: f32 = 4.0;

/// What the Wiener filter of one plane needs besides its frames: everything that depends on
/// the pattern, the OTF and the settings only. Computed on the host, once per set of pattern
/// parameters, and used as it is by the CPU ([`wiener_sim_with`]) and the GPU
/// (`super::wiener_cuda`), so that both compute the same thing.
pub struct WienerFilters {
    /// Raw grid (ny, nx); the output grid is (2ny, 2nx).
    pub raw: (usize, usize),
    /// Phases (frames) per direction.
    pub phases: usize,
    /// The OTF H on the raw grid: weights band +1 before it is zero-padded (raw grid, FFT
    /// order).
    pub h_coarse: Vec<f32>,
    /// The OTF H on the 2× grid: weights band 0.
    pub h_fine: Vec<f32>,
    /// A(k) / (Σ_{a,b} |H_{a,b}(k)|² + w²) on the 2× grid: the SIM Wiener filter with its
    /// apodisation, applied to the numerator Σ H*·D̃.
    pub sim: Vec<f32>,
    /// H·A_wf / (H² + w²) on the 2× grid: the widefield Wiener filter, apodised at k_c.
    pub widefield: Vec<f32>,
    /// Number of directions as a float (band 0 is counted once per direction).
    pub angles: f32,
    /// 2× grid rows and columns of the raw grid's Nyquist frequencies (even sizes only),
    /// dropped from the widefield spectra so that they are Hermitian.
    pub nyquist: (Option<usize>, Option<usize>),
    /// One per direction.
    pub directions: Vec<DirectionFilter>,
}

/// The per-direction part of [`WienerFilters`].
pub struct DirectionFilter {
    /// Band separation weights ([`separation_weights`] at the estimated phases): bands 0 and
    /// +1, one weight per phase.
    pub weights: [Vec<Complex32>; 2],
    /// Factor of band +1 when it is zero-padded: 4 (the 2× grid) × 2/m.
    pub scale: f32,
    /// e^{−2πi·kx·x} for every column x of the 2× grid (k₀ in cycles per fine pixel).
    pub ramp_x: Vec<Complex32>,
    /// e^{−2πi·ky·y} for every row y of the 2× grid.
    pub ramp_y: Vec<Complex32>,
}

impl WienerFilters {
    /// The filters for frames of `raw` = (ny, nx) pixels, `phases` per direction, pattern
    /// `params` (one per direction).
    pub fn new(
        raw: (usize, usize),
        phases: usize,
        optics: &SimOptics,
        otf: &Otf,
        params: &[AngleParams],
        settings: &WienerSettings,
    ) -> WienerFilters {
        let (ny, nx) = raw;
        let (fy, fx) = (2 * ny, 2 * nx);
        let p_fine = optics.pixel_size_um() / 2.0;
        // The widefield filter uses the OTF itself. With the zero-order attenuation N(k) the
        // bands are attenuated too (data N·D, OTF N·H): the numerator weight is (N·H)*·N = N²·H
        // (`h_fine`, `h_coarse`), the denominator |N·H|² (`otf` below).
        let h_wf = otf.grid(fy, fx, p_fine, [0.0, 0.0]);
        let (attenuated, numerator);
        let (otf, otf_num) = if settings.zero_order_strength > 0.0 {
            let sigma = settings.zero_order_fwhm_per_um / (8f64.ln() * 2.0).sqrt();
            let s = settings.zero_order_strength;
            attenuated = otf.clone().with_zero_order_attenuation(s, sigma);
            numerator = attenuated.clone().with_zero_order_attenuation(s, sigma);
            (&attenuated, &numerator)
        } else {
            (otf, otf)
        };
        let h_fine = otf_num.grid(fy, fx, p_fine, [0.0, 0.0]);
        let h_coarse = otf_num.grid(ny, nx, optics.pixel_size_um(), [0.0, 0.0]);
        let ramp = |n: usize, k: f64| -> Vec<Complex32> {
            use rustfft::num_complex::Complex64;
            use std::f64::consts::PI;
            (0..n)
                .map(|x| {
                    let e = Complex64::from_polar(1.0, -2.0 * PI * k * x as f64);
                    Complex32::new(e.re as f32, e.im as f32)
                })
                .collect()
        };
        // Denominator: Σ over directions of |H(k + k₀)|² + |H(k − k₀)|² (the second the mirror
        // image of the first), plus |H(k)|² once per direction for band 0.
        let mut den: Vec<f32> = crate::image::work_buffer(fy * fx);
        let mut directions = Vec::with_capacity(params.len());
        for par in params {
            let k = par.k0_per_um;
            let h_plus = otf.grid(fy, fx, p_fine, [-k[0], -k[1]]);
            den.par_chunks_mut(fx).enumerate().for_each(|(j, drow)| {
                let jm = if j == 0 { 0 } else { fy - j };
                for (i, d) in drow.iter_mut().enumerate() {
                    let (hp, hm) = (
                        h_plus[j * fx + i],
                        h_plus[jm * fx + if i == 0 { 0 } else { fx - i }],
                    );
                    *d += hp * hp + hm * hm;
                }
            });
            directions.push(DirectionFilter {
                weights: separation_weights(&equidistant_phases(
                    phases,
                    par.phase_at_origin((ny, nx)),
                )),
                scale: UPSCALE * (2.0 / par.modulation_used as f32),
                ramp_x: ramp(fx, k[0] * p_fine),
                ramp_y: ramp(fy, k[1] * p_fine),
            });
        }
        let angles = params.len() as f32;
        let kc = optics.cutoff_per_um();
        let w2 = (settings.wiener * settings.wiener) as f32;
        let apo = apodization(
            fy,
            fx,
            p_fine,
            settings.apodization_cutoff_per_um(kc, params),
            settings.apodization_bend,
        );
        let h_den = otf.grid(fy, fx, p_fine, [0.0, 0.0]);
        let mut sim = apo;
        sim.par_iter_mut()
            .zip(den.par_iter().zip(&h_den))
            .for_each(|(a, (&d, &h))| *a /= d + angles * h * h + w2);
        let mut widefield = apodization(fy, fx, p_fine, kc, settings.apodization_bend);
        widefield
            .par_iter_mut()
            .zip(&h_wf)
            .for_each(|(a, &h)| *a = h * *a / (h * h + w2));
        WienerFilters {
            raw,
            phases,
            h_coarse,
            h_fine,
            sim,
            widefield,
            angles,
            nyquist: (
                (ny % 2 == 0).then_some(fy - ny / 2),
                (nx % 2 == 0).then_some(fx - nx / 2),
            ),
            directions,
        }
    }
}

/// Adds 2·Re(f(r)·ramp_y(y)·ramp_x(x)) to the real part of `sum`: the band f shifted down by
/// k₀ (the ramps' frequency) plus its conjugate mirror, in real space.
fn shift_add_real(sum: &mut [Complex32], f: &[Complex32], d: &DirectionFilter) {
    let nx = d.ramp_x.len();
    sum.par_chunks_mut(nx)
        .zip(f.par_chunks(nx))
        .zip(&d.ramp_y)
        .for_each(|((srow, frow), &ey)| {
            for ((s, v), e) in srow.iter_mut().zip(frow).zip(&d.ramp_x) {
                s.re += 2.0 * (v * (ey * e)).re;
            }
        });
}

/// Reconstructs one plane. `frames[a][p]` is the (ny, nx) frame of direction a and phase p,
/// background-subtracted and tapered; `params[a]` its pattern.
pub fn wiener_sim(
    frames: &[Vec<&[f32]>],
    (ny, nx): (usize, usize),
    optics: &SimOptics,
    otf: &Otf,
    params: &[AngleParams],
    settings: &WienerSettings,
) -> Reconstruction {
    let phases = frames.first().map_or(0, |f| f.len());
    let filters = WienerFilters::new((ny, nx), phases, optics, otf, params, settings);
    wiener_sim_with(frames, &filters)
}

/// [`wiener_sim`] with filters already computed (they depend on the pattern only, so a stack
/// whose planes share one pattern computes them once).
pub fn wiener_sim_with(frames: &[Vec<&[f32]>], filters: &WienerFilters) -> Reconstruction {
    let (ny, nx) = filters.raw;
    let (fy, fx) = (2 * ny, 2 * nx);
    let coarse = Fft2::new(ny, nx);
    let fine = Fft2::new(fy, fx);
    let mut zero_sum = vec![Complex32::default(); ny * nx];

    // Bands ±1 of every direction enter the numerator as H*·D̃ (shifted band times the shifted
    // conjugate OTF). The OTF weight is applied before the shift, where it is H(k) on the raw
    // grid, and the shifted bands are summed in real space: band +1 shifted is b(r)·e^{−2πik₀·r}
    // on the 2× grid, band −1 its complex conjugate, so each direction adds 2·Re(·). One
    // forward FFT of the sum then serves every direction.
    let mut shifted_sum: Vec<Complex32> = crate::image::work_buffer(fy * fx);
    for (angle_frames, dir) in frames.iter().zip(&filters.directions) {
        let bands = separate_weighted(angle_frames, &dir.weights);
        zero_sum
            .par_iter_mut()
            .zip(&bands.zero)
            .for_each(|(s, v)| *s += v);
        let mut spec = bands.plus;
        coarse.forward(&mut spec);
        spec.par_iter_mut()
            .zip(&filters.h_coarse)
            .for_each(|(v, &h)| *v *= h);
        let mut f = zero_pad(&spec, (ny, nx), (fy, fx), dir.scale);
        fine.inverse(&mut f);
        shift_add_real(&mut shifted_sum, &f, dir);
    }
    fine.forward(&mut shifted_sum);
    // Band 0 of all directions: summed, weighted by H, counted once per direction (in the
    // filter's denominator); then the Wiener filter with its apodisation.
    let mut spec0 = zero_sum;
    coarse.forward(&mut spec0);
    let wf_spec = zero_pad(&spec0, (ny, nx), (fy, fx), UPSCALE);
    let mut num = shifted_sum;
    num.par_iter_mut()
        .zip(wf_spec.par_iter().zip(&filters.h_fine))
        .zip(&filters.sim)
        .for_each(|((n, (v, &h)), &w)| {
            *n += v * h;
            *n *= w;
        });
    fine.inverse(&mut num);
    let sim = num.iter().map(|v| v.re.max(0.0)).collect();

    // Widefield (mean frame) and its Wiener-filtered version, both real: one inverse FFT of
    // WF + i·WWF gives WF as the real part and WWF as the imaginary part. For that the spectra
    // must be Hermitian, so the raw grid's Nyquist row and column (beyond the OTF cutoff: noise
    // only), which the zero padding puts on the negative side alone, are dropped.
    let (nyq_y, nyq_x) = filters.nyquist;
    let angles = filters.angles;
    let mut packed = wf_spec;
    packed
        .par_chunks_mut(fx)
        .zip(filters.widefield.par_chunks(fx))
        .enumerate()
        .for_each(|(j, (row, g_row))| {
            if Some(j) == nyq_y {
                row.fill(Complex32::default());
                return;
            }
            for (v, &g) in row.iter_mut().zip(g_row) {
                let wf = *v / angles;
                *v = wf + Complex32::i() * (wf * g);
            }
            if let Some(x) = nyq_x {
                row[x] = Complex32::default();
            }
        });
    fine.inverse(&mut packed);
    Reconstruction {
        sim,
        widefield: packed.iter().map(|v| v.re).collect(),
        wiener_widefield: packed.iter().map(|v| v.im.max(0.0)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::synthetic::{simulate_sim, SimAcquisition};
    use super::*;
    use ndarray::Array2;

    /// Full width at half maximum (pixels) of the row through the maximum of a (n, n) image.
    fn fwhm(img: &[f32], n: usize) -> usize {
        let (i, &max) = img
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap();
        let row = &img[(i / n) * n..(i / n + 1) * n];
        row.iter().filter(|&&v| v > max / 2.0).count()
    }

    #[test]
    fn bead_is_about_twice_as_sharp_as_in_widefield() {
        let n = 64;
        let mut obj = Array2::<f32>::zeros((n, n));
        obj[[32, 32]] = 1.0;
        obj[[20, 40]] = 1.0;
        obj[[44, 24]] = 1.0;
        let optics = SimOptics::default();
        let acq = SimAcquisition {
            photons: 1e5,
            background: 0.0,
            ..Default::default()
        };
        let data = simulate_sim(&obj, &optics, &acq).unwrap();
        let otf = Otf::new(&optics, 0.3);
        let frames: Vec<&[f32]> = data.raw.data.as_slice().unwrap().chunks(n * n).collect();
        let per_angle: Vec<Vec<&[f32]>> = frames.chunks(3).map(|c| c.to_vec()).collect();
        // Three beads hardly constrain k₀ (a point's spectrum correlates with itself at every
        // shift): this test is about the filter, so it uses the true pattern.
        let params: Vec<AngleParams> = data
            .truth
            .iter()
            .map(|t| AngleParams {
                k0_px: t.k0_px,
                k0_per_um: t.k0_per_um,
                angle_deg: t.angle_deg,
                line_spacing_nm: t.line_spacing_nm,
                phase_rad: t.phase_rad,
                modulation: t.modulation,
                modulation_used: t.modulation,
                peak_ratio: 0.0,
                flags: Default::default(),
            })
            .collect();
        let settings = WienerSettings {
            wiener: 0.05,
            apodization_cutoff: 2.0,
            apodization_bend: 0.9,
            zero_order_strength: 0.0,
            zero_order_fwhm_per_um: 1.2,
        };
        let r = wiener_sim(&per_angle, (n, n), &optics, &otf, &params, &settings);
        let (w_sim, w_wf) = (fwhm(&r.sim, 2 * n), fwhm(&r.widefield, 2 * n));
        // Widefield FWHM ≈ 0.51 λ/NA = 223 nm = 5.6 pixels of 40 nm.
        assert!((5..=7).contains(&w_wf), "{w_wf}");
        assert!(
            w_sim as f64 <= 0.65 * w_wf as f64,
            "SIM {w_sim} vs widefield {w_wf}"
        );
        // The same light in a narrower peak: a higher maximum (the band-0 weights keep the
        // DC, so the integrals agree before clipping at 0).
        let max = |v: &[f32]| v.iter().cloned().fold(0f32, f32::max);
        assert!(max(&r.sim) > 2.0 * max(&r.widefield));
    }
}
