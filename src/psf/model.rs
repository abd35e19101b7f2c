//! Model PSFs on a voxel grid.
//!
//! - Gaussian: the widefield Gaussian approximation of Zhang, Zerubia & Olivo-Marin,
//!   "Gaussian approximations of fluorescence microscope point-spread function models",
//!   Appl. Opt. 46, 1819 (2007), paraxial case.
//! - Born & Wolf: the scalar paraxial defocus model
//!   I(r, z) = |∫₀¹ J₀(k₀·NA·r·ρ) · exp(−i·k₀·NA²·z·ρ²/(2nᵢ)) · ρ dρ|², k₀ = 2π/λ.
//!
//! Sampling convention (both models): laterally each pixel integrates the light falling on it
//! (as a camera pixel does); axially each plane is the PSF at that focus position (sampled).
//! The Gaussian is integrated exactly (erf); Born & Wolf is averaged over s×s sub-pixel
//! samples, s odd ≥ 3 and large enough that the sub-samples are ≤ λ/(8·NA) apart.

use super::PsfParams;
use crate::special::{bessel_j0, erfc, gauss_legendre_01};
use ndarray::{Array2, Array3};
use rayon::prelude::*;
use std::f64::consts::{PI, SQRT_2};

/// Gaussian standard deviations (σ_z, σ_xy) in nm, widefield, paraxial (Zhang et al. 2007):
/// 2D: σ_xy = 0.21·λ/NA (the best fit to the Airy disk); 3D: σ_xy = √2/(k₀·NA) ≈ 0.225·λ/NA,
/// σ_z = 2√6·n/(k₀·NA²) ≈ 0.780·λ·n/NA². (σ_z is NaN-free but meaningless in 2D.)
pub fn gaussian_sigmas_nm(params: &PsfParams, three_d: bool) -> (f64, f64) {
    let k0 = 2.0 * PI / params.wavelength_nm;
    let na = params.na;
    let sigma_z = 2.0 * 6f64.sqrt() * params.immersion_index / (k0 * na * na);
    let sigma_xy = if three_d {
        SQRT_2 / (k0 * na)
    } else {
        0.21 * params.wavelength_nm / na
    };
    (sigma_z, sigma_xy)
}

/// Gaussian PSF, not yet normalised: pixel-integrated laterally, sampled axially.
pub(super) fn gaussian(params: &PsfParams, shape: (usize, usize, usize)) -> Array3<f64> {
    let (nz, ny, nx) = shape;
    let (sigma_z, sigma_xy) = gaussian_sigmas_nm(params, nz > 1);
    let s = sigma_xy / params.pixel_size_nm; // σ in pixels
                                             // ∫ over pixel i of the unit-area 1D Gaussian, via erfc so that tails keep their digits.
    let integrated = |i: i64| {
        let b = (i.unsigned_abs() as f64 + 0.5) / (SQRT_2 * s);
        if i == 0 {
            1.0 - erfc(b)
        } else {
            let a = (i.unsigned_abs() as f64 - 0.5) / (SQRT_2 * s);
            0.5 * (erfc(a) - erfc(b))
        }
    };
    let axis = |n: usize| -> Vec<f64> {
        let h = (n / 2) as i64;
        (0..n as i64).map(|i| integrated(i - h)).collect()
    };
    let (gy, gx) = (axis(ny), axis(nx));
    let hz = (nz / 2) as f64;
    let gz: Vec<f64> = (0..nz)
        .map(|i| {
            let z = (i as f64 - hz) * params.z_step_nm;
            if nz == 1 {
                1.0
            } else {
                (-z * z / (2.0 * sigma_z * sigma_z)).exp()
            }
        })
        .collect();
    Array3::from_shape_fn(shape, |(z, y, x)| gz[z] * gy[y] * gx[x])
}

/// Number of Gauss–Legendre points for ∫₀¹ J₀(aρ)·e^(−ibρ²)·ρ dρ with |a| ≤ `a_max`,
/// |b| ≤ `b_max`: on [−1, 1] the integrand oscillates at most at ω = a/2 + b rad per unit;
/// Gauss–Legendre reaches 1e-9 near 0.55·ω points and machine precision near 0.6·ω + 10.
pub(super) fn quadrature_points(a_max: f64, b_max: f64) -> usize {
    (0.75 * (0.5 * a_max + b_max)).ceil() as usize + 32
}

/// Born & Wolf radial intensity profiles, one per defocus, on a uniform radial grid
/// r = j·dr, read back by 4-point (cubic) Lagrange interpolation.
pub(super) struct RadialProfiles {
    dr: f64,
    profiles: Vec<Vec<f64>>,
}

/// Most radial grid points per profile (the grid coarsens beyond that; only reached for
/// PSFs hundreds of λ/NA wide).
const MAX_RADIAL_POINTS: usize = 16384;

impl RadialProfiles {
    /// Profiles I(r, z) for each z in `defocus_nm`, for 0 ≤ r ≤ `r_max_nm`. The grid step is
    /// λ/(256·NA) (interpolation error ≈ 1e-7 of the peak); `n_quad` overrides the number of
    /// quadrature points (for convergence tests).
    pub(super) fn new(
        params: &PsfParams,
        defocus_nm: &[f64],
        r_max_nm: f64,
        n_quad: Option<usize>,
    ) -> Self {
        let k0 = 2.0 * PI / params.wavelength_nm;
        let na = params.na;
        let dr = (params.wavelength_nm / (256.0 * na)).max(r_max_nm / MAX_RADIAL_POINTS as f64);
        let n_r = (r_max_nm / dr).ceil() as usize + 4;
        let b: Vec<f64> = defocus_nm
            .iter()
            .map(|z| k0 * na * na * z / (2.0 * params.immersion_index))
            .collect();
        let a_max = k0 * na * dr * n_r as f64;
        let b_max = b.iter().fold(0.0f64, |m, b| m.max(b.abs()));
        let (rho, w) = gauss_legendre_01(n_quad.unwrap_or_else(|| quadrature_points(a_max, b_max)));
        // Per plane and node: w·ρ·e^(−ibρ²), as (re, im).
        let coef: Vec<Vec<(f64, f64)>> = b
            .iter()
            .map(|&b| {
                rho.iter()
                    .zip(&w)
                    .map(|(&r, &w)| {
                        let phase = -b * r * r;
                        (w * r * phase.cos(), w * r * phase.sin())
                    })
                    .collect()
            })
            .collect();
        // One J₀ row per radius, shared by all planes.
        let by_radius: Vec<Vec<f64>> = (0..n_r)
            .into_par_iter()
            .map(|j| {
                let a = k0 * na * dr * j as f64;
                let j0: Vec<f64> = rho.iter().map(|&r| bessel_j0(a * r)).collect();
                coef.iter()
                    .map(|c| {
                        let (re, im) = c
                            .iter()
                            .zip(&j0)
                            .fold((0.0, 0.0), |(re, im), (&(cr, ci), &j)| {
                                (re + j * cr, im + j * ci)
                            });
                        re * re + im * im
                    })
                    .collect()
            })
            .collect();
        let profiles = (0..b.len())
            .map(|p| by_radius.iter().map(|row| row[p]).collect())
            .collect();
        RadialProfiles { dr, profiles }
    }

    /// I(r) of profile `plane` (r ≥ 0, within the range given to `new`), never negative.
    pub(super) fn at(&self, plane: usize, r: f64) -> f64 {
        let f = &self.profiles[plane];
        let t = r / self.dr;
        let j = t.floor() as usize;
        let u = t - j as f64;
        // The profile is even in r: I(−dr) = I(dr).
        let fm1 = if j == 0 { f[1] } else { f[j - 1] };
        let (f0, f1, f2) = (f[j], f[j + 1], f[j + 2]);
        let v = -u * (u - 1.0) * (u - 2.0) / 6.0 * fm1
            + (u + 1.0) * (u - 1.0) * (u - 2.0) / 2.0 * f0
            - (u + 1.0) * u * (u - 2.0) / 2.0 * f1
            + (u + 1.0) * u * (u - 1.0) / 6.0 * f2;
        v.max(0.0)
    }
}

/// Sub-samples per pixel side for the Born & Wolf model: odd, ≥ 3, spacing ≤ λ/(8·NA), ≤ 15.
pub(super) fn supersampling(params: &PsfParams) -> usize {
    let fine = params.wavelength_nm / (8.0 * params.na);
    let s = ((params.pixel_size_nm / fine).ceil() as usize).clamp(3, 15);
    s | 1
}

/// Born & Wolf PSF, not yet normalised. Radially symmetric: the profile is computed once per
/// |z| and the quadrant of each plane once, then mirrored (so ±x, ±y, ±z symmetry is exact).
pub(super) fn born_wolf(params: &PsfParams, shape: (usize, usize, usize)) -> Array3<f64> {
    let (nz, ny, nx) = shape;
    let (hz, hy, hx) = (nz / 2, ny / 2, nx / 2);
    let p = params.pixel_size_nm;
    let s = supersampling(params);
    let offsets: Vec<f64> = (0..s)
        .map(|i| ((i as f64 + 0.5) / s as f64 - 0.5) * p)
        .collect();
    let r_max = (hx as f64 + 0.5).hypot(hy as f64 + 0.5) * p;
    let defocus: Vec<f64> = (0..=hz).map(|i| i as f64 * params.z_step_nm).collect();
    let profiles = RadialProfiles::new(params, &defocus, r_max, None);
    let quadrants: Vec<Array2<f64>> = (0..=hz)
        .into_par_iter()
        .map(|plane| {
            Array2::from_shape_fn((hy + 1, hx + 1), |(iy, ix)| {
                let mut sum = 0.0;
                for oy in &offsets {
                    let y = iy as f64 * p + oy;
                    for ox in &offsets {
                        sum += profiles.at(plane, (ix as f64 * p + ox).hypot(y));
                    }
                }
                sum / (s * s) as f64
            })
        })
        .collect();
    Array3::from_shape_fn(shape, |(z, y, x)| {
        quadrants[z.abs_diff(hz)][[y.abs_diff(hy), x.abs_diff(hx)]]
    })
}

/// Born & Wolf intensity at one point (r, z) in nm, by direct quadrature with `n_quad`
/// points: slow, for tests. Normalised so that I(0, 0) = 1.
#[cfg(test)]
pub(super) fn born_wolf_point(params: &PsfParams, r_nm: f64, z_nm: f64, n_quad: usize) -> f64 {
    let k0 = 2.0 * PI / params.wavelength_nm;
    let a = k0 * params.na * r_nm;
    let b = k0 * params.na * params.na * z_nm / (2.0 * params.immersion_index);
    let (rho, w) = gauss_legendre_01(n_quad);
    let (mut re, mut im) = (0.0, 0.0);
    for (&r, &w) in rho.iter().zip(&w) {
        let j = w * r * bessel_j0(a * r);
        re += j * (b * r * r).cos();
        im -= j * (b * r * r).sin();
    }
    4.0 * (re * re + im * im)
}

#[cfg(test)]
mod tests {
    use super::super::PsfModel;
    use super::*;
    use crate::special::bessel_j1;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn oil() -> PsfParams {
        PsfParams {
            model: PsfModel::BornWolf,
            na: 1.4,
            wavelength_nm: 520.0,
            immersion_index: 1.518,
            pixel_size_nm: 65.0,
            z_step_nm: 200.0,
        }
    }

    #[test]
    fn in_focus_profile_is_the_airy_pattern() {
        let p = oil();
        let prof = RadialProfiles::new(&p, &[0.0], 3000.0, None);
        let peak = prof.at(0, 0.0);
        let k0 = 2.0 * PI / p.wavelength_nm;
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut worst = 0.0f64;
        for _ in 0..2000 {
            let r: f64 = rng.gen_range(0.0..3000.0);
            let v = k0 * p.na * r;
            let airy = if v == 0.0 {
                1.0
            } else {
                (2.0 * bessel_j1(v) / v).powi(2)
            };
            worst = worst.max((prof.at(0, r) / peak - airy).abs());
        }
        assert!(worst < 1e-6, "worst |I/I₀ − [2J₁(v)/v]²| = {worst:e}");
    }

    #[test]
    fn on_axis_profile_is_the_paraxial_sinc2() {
        let p = oil();
        let z: Vec<f64> = (0..=60).map(|i| f64::from(i) * 50.0).collect();
        let prof = RadialProfiles::new(&p, &z, 100.0, None);
        let k0 = 2.0 * PI / p.wavelength_nm;
        let mut worst = 0.0f64;
        for (i, &z) in z.iter().enumerate() {
            let u = k0 * p.na * p.na * z / (4.0 * p.immersion_index);
            let sinc2 = if u == 0.0 { 1.0 } else { (u.sin() / u).powi(2) };
            worst = worst.max((prof.at(i, 0.0) / prof.at(0, 0.0) - sinc2).abs());
        }
        assert!(worst < 1e-12, "worst |I(0,z)/I(0,0) − sinc²| = {worst:e}");
    }

    #[test]
    fn quadrature_converges_when_doubling_the_points() {
        let p = oil();
        let z = [0.0, 700.0, 1500.0, 3200.0];
        let r_max = 4000.0;
        let prof = RadialProfiles::new(&p, &z, r_max, None);
        let k0 = 2.0 * PI / p.wavelength_nm;
        let n = quadrature_points(
            k0 * p.na * r_max * 1.01,
            k0 * p.na * p.na * 3200.0 / (2.0 * p.immersion_index),
        );
        let doubled = RadialProfiles::new(&p, &z, r_max, Some(2 * n));
        let quarter = RadialProfiles::new(&p, &z, r_max, Some(n / 4));
        let peak = prof.at(0, 0.0);
        let diff = |other: &RadialProfiles| {
            (0..z.len())
                .flat_map(|i| (0..800).map(move |j| (i, f64::from(j) * 5.0)))
                .map(|(i, r)| (prof.at(i, r) - other.at(i, r)).abs() / peak)
                .fold(0.0f64, f64::max)
        };
        let (d2, d4) = (diff(&doubled), diff(&quarter));
        assert!(d2 < 1e-12, "n = {n} vs 2n: {d2:e}");
        // Convergence sets in near 0.6·(a/2 + b) points; the rule keeps a margin.
        assert!(
            d4 > 1e-4,
            "n/4 should not have converged ({d4:e}): the test would see nothing"
        );
    }

    #[test]
    fn interpolated_profile_matches_direct_evaluation() {
        let p = PsfParams {
            na: 1.2,
            immersion_index: 1.33,
            wavelength_nm: 610.0,
            ..oil()
        };
        let z = [0.0, 450.0, 2500.0];
        let prof = RadialProfiles::new(&p, &z, 2500.0, None);
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut worst = 0.0f64;
        for _ in 0..300 {
            let (i, r) = (rng.gen_range(0..3), rng.gen_range(0.0..2500.0));
            let direct = born_wolf_point(&p, r, z[i], 400);
            worst = worst.max((prof.at(i, r) / prof.at(0, 0.0) - direct).abs());
        }
        assert!(
            worst < 1e-6,
            "worst interpolation error {worst:e} of the peak"
        );
    }

    #[test]
    fn supersampling_resolves_lambda_over_8na() {
        let p = oil(); // λ/(8·NA) = 46 nm
        assert_eq!(supersampling(&p), 3);
        assert_eq!(
            supersampling(&PsfParams {
                pixel_size_nm: 150.0,
                ..p
            }),
            5
        );
        assert_eq!(
            supersampling(&PsfParams {
                pixel_size_nm: 10_000.0,
                ..p
            }),
            15
        );
    }

    #[test]
    fn gaussian_sigmas_follow_zhang_2007() {
        let p = oil();
        let (sz, sxy) = gaussian_sigmas_nm(&p, true);
        let unit_xy = p.wavelength_nm / p.na;
        let unit_z = p.wavelength_nm * p.immersion_index / (p.na * p.na);
        assert!((sxy / unit_xy - 0.2251).abs() < 1e-4, "{}", sxy / unit_xy);
        assert!((sz / unit_z - 0.7797).abs() < 1e-4, "{}", sz / unit_z);
        let (_, sxy2) = gaussian_sigmas_nm(&p, false);
        assert!((sxy2 / unit_xy - 0.21).abs() < 1e-12);
    }
}
