//! Point-spread functions (PSFs) for deconvolution: the Gaussian approximation of the
//! widefield PSF (Zhang, Zerubia & Olivo-Marin 2007), the scalar Born & Wolf defocus model
//! (Born & Wolf, *Principles of Optics*, §8.8), and measured PSFs (bead images).
//!
//! Conventions: arrays are (z, y, x); a [`Psf`] is odd along every axis with its peak at the
//! centre index n/2, non-negative, sum 1. Model lengths ([`PsfParams`]) are in nm, in the
//! sample; [`Psf::voxel_size`] converts to µm. Model PSFs integrate the light over each pixel
//! laterally (as a camera does) and sample each plane at its focus position axially.
//!
//! Sampling: pixels up to the Nyquist size λ/(4·NA) ([`PsfParams::nyquist_pixel_nm`]) record
//! everything the objective passes; larger pixels work (the model is integrated over the
//! pixel) but lose resolution, and so does deconvolution of such images.

mod measured;
mod model;

pub use model::gaussian_sigmas_nm;

use crate::{invalid, Result, VoxelSize};
use ndarray::Array3;

/// A PSF ready for deconvolution: odd size along every axis, peak voxel at the centre
/// (index n/2), non-negative, sum 1. Shape (nz, ny, nx); nz = 1 for a 2D PSF.
#[derive(Debug, Clone, PartialEq)]
pub struct Psf {
    pub data: Array3<f32>,
}

/// PSF model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsfModel {
    /// Gaussian approximation of the widefield PSF (Zhang et al. 2007, paraxial):
    /// σ_xy = 0.21·λ/NA in 2D; σ_xy = √2/(k₀·NA) ≈ 0.225·λ/NA and
    /// σ_z = 2√6·n/(k₀·NA²) ≈ 0.780·λ·n/NA² in 3D (k₀ = 2π/λ). No rings, no defocus cone.
    Gaussian,
    /// Scalar Born & Wolf defocus model (paraxial, aberration-free):
    /// I(r, z) = |∫₀¹ J₀(k₀·NA·r·ρ)·exp(−i·k₀·NA²·z·ρ²/(2n))·ρ dρ|².
    BornWolf,
}

/// A PSF model in options (JSON from the Fiji plugin) is its name, as [`str::parse`] reads it.
impl<'de> serde::Deserialize<'de> for PsfModel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for PsfModel {
    type Err = crate::Error;
    /// The model by name: `gaussian`, or `born-wolf` (also `born & wolf`, `bornwolf`), in
    /// any case.
    fn from_str(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "gaussian" => Ok(PsfModel::Gaussian),
            "born-wolf" | "born & wolf" | "bornwolf" => Ok(PsfModel::BornWolf),
            other => invalid!("unknown PSF model '{other}': use born-wolf or gaussian"),
        }
    }
}

/// Optical parameters of a PSF model. Its serde form (every field, no other) is the options
/// of the Fiji plugin's PSF calls.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PsfParams {
    pub model: PsfModel,
    /// Numerical aperture of the objective.
    pub na: f64,
    /// Emission wavelength, nm.
    pub wavelength_nm: f64,
    /// Refractive index of the immersion medium (1.518 oil, 1.33 water, 1.0 air).
    pub immersion_index: f64,
    /// Lateral pixel size in the sample, nm.
    pub pixel_size_nm: f64,
    /// Plane spacing, nm (ignored for 2D PSFs).
    pub z_step_nm: f64,
}

/// Largest lateral size [`suggested_shape`] picks unless the image is larger.
pub const MAX_SUGGESTED_LATERAL: usize = 129;
/// Largest number of planes [`suggested_shape`] picks.
pub const MAX_SUGGESTED_PLANES: usize = 65;
/// Largest PSF [`Psf::generate`] makes (2 GiB of f64 while computing).
const MAX_VOXELS: usize = 1 << 28;

impl PsfParams {
    /// Checks that the parameters describe a real microscope (the z step only when
    /// `three_d`): 0.01 ≤ NA < n, 1 ≤ n ≤ 2, 200 nm ≤ λ ≤ 2000 nm, 1 nm ≤ pixel size and
    /// z step ≤ 100 µm. Messages say which value is wrong and what a usual value is.
    pub fn validate(&self, three_d: bool) -> Result<()> {
        let (na, n, wl) = (self.na, self.immersion_index, self.wavelength_nm);
        if !(na.is_finite() && na > 0.0) {
            return invalid!(
                "the numerical aperture (NA) must be a positive number, as written on the \
                 objective (e.g. 1.4 for oil, 1.2 for water, 0.75 for air); got {na}"
            );
        }
        if na < 0.01 {
            return invalid!(
                "NA {na} is far below any microscope objective (0.02 to 1.7): check the value"
            );
        }
        if !(n.is_finite() && (1.0..=2.0).contains(&n)) {
            return invalid!(
                "the refractive index of the immersion medium must be between 1.0 and 2.0 \
                 (1.518 for oil, 1.33 for water, 1.0 for a dry objective); got {n}"
            );
        }
        if na >= n {
            return invalid!(
                "NA {na} is impossible with immersion index {n}: the NA of an objective is always \
                 below the refractive index of its immersion medium (e.g. NA 1.4 needs oil, n = 1.518); \
                 check both values"
            );
        }
        if !(wl.is_finite() && (200.0..=2000.0).contains(&wl)) {
            if (0.2..=2.0).contains(&wl) {
                return invalid!(
                    "emission wavelength {wl}: this looks like µm; give it in nm (e.g. 520 for GFP)"
                );
            }
            return invalid!(
                "the emission wavelength must be between 200 and 2000 nm (e.g. 520 for GFP, \
                 610 for mCherry); got {wl} nm"
            );
        }
        check_length(
            self.pixel_size_nm,
            "pixel size",
            "65 for a 6.5 µm camera pixel behind a 100× objective",
        )?;
        if three_d {
            check_length(self.z_step_nm, "z step (distance between planes)", "200")?;
        }
        Ok(())
    }

    /// Largest pixel size (nm) that samples the widefield image without loss: λ/(4·NA).
    /// Larger pixels are allowed (undersampled), never an error.
    pub fn nyquist_pixel_nm(&self) -> f64 {
        self.wavelength_nm / (4.0 * self.na)
    }

    /// Largest z step (nm) that samples the widefield image without loss:
    /// λ/(2·n·(1 − cos α)), sin α = NA/n.
    pub fn nyquist_z_step_nm(&self) -> f64 {
        let sin = self.na / self.immersion_index;
        let cos = (1.0 - sin * sin).sqrt();
        self.wavelength_nm / (2.0 * self.immersion_index * (1.0 - cos))
    }
}

fn check_length(v: f64, what: &str, example: &str) -> Result<()> {
    if !(v.is_finite() && v > 0.0) {
        return invalid!(
            "the {what} must be a positive number of nm in the sample (e.g. {example}); got {v}"
        );
    }
    if v < 1.0 {
        return invalid!(
            "a {what} of {v} nm is smaller than any microscope's: give it in nm, not µm (e.g. {example})"
        );
    }
    if v > 100_000.0 {
        return invalid!(
            "a {what} of {v} nm (over 0.1 mm) is far larger than any microscope's: give it in nm (e.g. {example})"
        );
    }
    Ok(())
}

/// PSF shape (nz, ny, nx) for deconvolving an image of `image_shape` (nz, ny, nx).
///
/// - Axially: 1 plane for a 2D image. For a stack, Born & Wolf takes 2·nz−1 planes (so that
///   every plane sees the defocused light of every other), at most
///   [`MAX_SUGGESTED_PLANES`]; Gaussian takes planes out to 5·σ_z, within the same bounds.
/// - Laterally: out to where the PSF has decayed, radius R = 5·σ_xy (Gaussian) or
///   5 Airy radii (5·0.61·λ/NA) plus the geometric blur NA·z/n of the farthest plane z
///   (Born & Wolf); size 2·⌈R/pixel⌉+1, capped at 2·n−1 of the image and at
///   [`MAX_SUGGESTED_LATERAL`] (129) unless the image is larger, then at its size.
///
/// Always odd, ≥ 1. Does not validate `params` (see [`PsfParams::validate`]; [`Psf::for_image`]
/// does): with invalid parameters it returns some size within the caps.
pub fn suggested_shape(
    params: &PsfParams,
    image_shape: (usize, usize, usize),
) -> (usize, usize, usize) {
    let (nz, ny, nx) = (
        image_shape.0.max(1),
        image_shape.1.max(1),
        image_shape.2.max(1),
    );
    let three_d = nz > 1;
    let max_hz = (nz - 1).min(MAX_SUGGESTED_PLANES / 2);
    let (hz, radius_nm) = match params.model {
        PsfModel::Gaussian => {
            let (sigma_z, sigma_xy) = gaussian_sigmas_nm(params, three_d);
            let hz = if three_d {
                ((5.0 * sigma_z / params.z_step_nm).ceil() as usize).clamp(1, max_hz)
            } else {
                0
            };
            (hz, 5.0 * sigma_xy)
        }
        PsfModel::BornWolf => {
            let airy = 0.61 * params.wavelength_nm / params.na;
            let defocus = max_hz as f64 * params.z_step_nm;
            (
                max_hz,
                5.0 * airy + params.na * defocus / params.immersion_index,
            )
        }
    };
    // NaN → 0, ∞ → huge: both end up within the caps.
    let h = ((radius_nm / params.pixel_size_nm).ceil() as usize).clamp(1, 1 << 20);
    let lateral = |n: usize| {
        let odd_image = if n % 2 == 1 { n } else { n - 1 };
        (2 * h + 1)
            .min(2 * n - 1)
            .min(MAX_SUGGESTED_LATERAL.max(odd_image))
    };
    (2 * hz + 1, lateral(ny), lateral(nx))
}

impl Psf {
    /// A centred Gaussian kernel of `shape` (nz, ny, nx) with standard deviations `sigma` =
    /// (axial, lateral) in voxels, sum 1: a stand-in PSF for tests and benchmarks.
    pub fn gaussian_voxels(shape: (usize, usize, usize), sigma: (f32, f32)) -> Psf {
        let (pz, py, px) = shape;
        let (a, l) = (2.0 * sigma.0 * sigma.0, 2.0 * sigma.1 * sigma.1);
        let mut k = Array3::from_shape_fn(shape, |(z, y, x)| {
            let dz = z as f32 - (pz / 2) as f32;
            let dy = y as f32 - (py / 2) as f32;
            let dx = x as f32 - (px / 2) as f32;
            (-(dz * dz / a + (dy * dy + dx * dx) / l)).exp()
        });
        let sum = k.sum();
        k.mapv_inplace(|v| v / sum);
        Psf { data: k }
    }

    /// A model PSF of the given shape (nz, ny, nx), each odd (an even size is an error: the
    /// peak must fall on a pixel); nz = 1 gives the in-focus plane (2D PSF). Sum 1, peak at
    /// the centre. See [`PsfModel`] for the formulas and the module doc for the sampling.
    /// A 65×65×33 Born & Wolf PSF takes ~10 ms on two cores.
    pub fn generate(params: &PsfParams, shape: (usize, usize, usize)) -> Result<Psf> {
        let (nz, ny, nx) = shape;
        if nz == 0 || ny == 0 || nx == 0 {
            return invalid!("the PSF size {nx}×{ny}×{nz} (x×y×z) has an empty axis: use odd sizes such as 65×65×33");
        }
        if nz % 2 == 0 || ny % 2 == 0 || nx % 2 == 0 {
            return invalid!(
                "the PSF size must be odd along every axis so that its peak falls on the centre \
                 pixel; got {nx}×{ny}×{nz} (x×y×z): use {}×{}×{}",
                nx | 1,
                ny | 1,
                nz | 1
            );
        }
        if nx.saturating_mul(ny).saturating_mul(nz) > MAX_VOXELS {
            return invalid!(
                "a PSF of {nx}×{ny}×{nz} (x×y×z) pixels is too large; a few hundred pixels \
                 along each axis are plenty (see the suggested PSF size)"
            );
        }
        params.validate(nz > 1)?;
        let raw = match params.model {
            PsfModel::Gaussian => model::gaussian(params, shape),
            PsfModel::BornWolf => model::born_wolf(params, shape),
        };
        let sum = raw.sum();
        Ok(Psf {
            data: raw.mapv(|v| (v / sum) as f32),
        })
    }

    /// A model PSF sized for deconvolving an image of `image_shape` (nz, ny, nx): the shape
    /// is [`suggested_shape`] (see there for the rule).
    pub fn for_image(params: &PsfParams, image_shape: (usize, usize, usize)) -> Result<Psf> {
        let (nz, ny, nx) = image_shape;
        if nz == 0 || ny == 0 || nx == 0 {
            return invalid!("the image is empty ({nx}×{ny}×{nz} pixels)");
        }
        params.validate(nz > 1)?;
        Psf::generate(params, suggested_shape(params, image_shape))
    }

    /// (nz, ny, nx).
    pub fn shape(&self) -> (usize, usize, usize) {
        self.data.dim()
    }

    /// Voxel size of a model PSF, µm.
    pub fn voxel_size(params: &PsfParams) -> VoxelSize {
        VoxelSize {
            z: params.z_step_nm / 1000.0,
            y: params.pixel_size_nm / 1000.0,
            x: params.pixel_size_nm / 1000.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use std::f64::consts::PI;

    fn params(model: PsfModel) -> PsfParams {
        PsfParams {
            model,
            na: 1.4,
            wavelength_nm: 520.0,
            immersion_index: 1.518,
            pixel_size_nm: 65.0,
            z_step_nm: 200.0,
        }
    }

    fn message<T: std::fmt::Debug>(r: Result<T>) -> String {
        match r {
            Err(Error::InvalidInput(m)) => m,
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    fn argmax(psf: &Psf) -> (usize, usize, usize) {
        psf.data
            .indexed_iter()
            .fold(
                ((0, 0, 0), f32::MIN),
                |b, (i, &v)| if v > b.1 { (i, v) } else { b },
            )
            .0
    }

    /// Sum 1, non-negative, peak at the centre, exact ±x/±y/±z mirror symmetry, x↔y.
    fn check_psf(psf: &Psf) {
        let (nz, ny, nx) = psf.shape();
        let sum: f64 = psf.data.iter().map(|&v| f64::from(v)).sum();
        assert!((sum - 1.0).abs() < 1e-5, "sum {sum}");
        assert!(psf.data.iter().all(|&v| v >= 0.0));
        assert_eq!(argmax(psf), (nz / 2, ny / 2, nx / 2));
        let peak = psf.data[[nz / 2, ny / 2, nx / 2]];
        for ((z, y, x), &v) in psf.data.indexed_iter() {
            assert_eq!(v, psf.data[[nz - 1 - z, y, x]]);
            assert_eq!(v, psf.data[[z, ny - 1 - y, x]]);
            assert_eq!(v, psf.data[[z, y, nx - 1 - x]]);
            if ny == nx {
                assert!((v - psf.data[[z, x, y]]).abs() <= 1e-6 * peak);
            }
        }
    }

    #[test]
    fn born_wolf_psf_is_normalised_centred_and_symmetric() {
        check_psf(&Psf::generate(&params(PsfModel::BornWolf), (33, 65, 65)).unwrap());
        check_psf(&Psf::generate(&params(PsfModel::BornWolf), (1, 31, 45)).unwrap());
    }

    #[test]
    fn gaussian_psf_is_normalised_centred_and_symmetric() {
        check_psf(&Psf::generate(&params(PsfModel::Gaussian), (21, 25, 25)).unwrap());
        check_psf(&Psf::generate(&params(PsfModel::Gaussian), (1, 9, 15)).unwrap());
    }

    /// FWHM of a symmetric profile sampled at unit spacing, centre at index c.
    fn fwhm(profile: &[f32]) -> f64 {
        let c = profile.len() / 2;
        let half = f64::from(profile[c]) / 2.0;
        let i = (c..profile.len())
            .find(|&i| f64::from(profile[i]) < half)
            .unwrap();
        let (a, b) = (f64::from(profile[i - 1]), f64::from(profile[i]));
        2.0 * ((i - 1 - c) as f64 + (a - half) / (a - b))
    }

    #[test]
    fn gaussian_fwhm_matches_the_formula() {
        let fine = PsfParams {
            pixel_size_nm: 4.0,
            z_step_nm: 10.0,
            ..params(PsfModel::Gaussian)
        };
        let psf = Psf::generate(&fine, (161, 161, 161)).unwrap();
        let (sz, sxy) = gaussian_sigmas_nm(&fine, true);
        let k = 2.0 * (2.0 * 2f64.ln()).sqrt();
        let x: Vec<f32> = psf.data.slice(ndarray::s![80, 80, ..]).to_vec();
        let z: Vec<f32> = psf.data.slice(ndarray::s![.., 80, 80]).to_vec();
        let (fx, fz) = (fwhm(&x) * 4.0, fwhm(&z) * 10.0);
        assert!(
            (fx / (k * sxy) - 1.0).abs() < 2e-3,
            "lateral FWHM {fx} nm vs {}",
            k * sxy
        );
        assert!(
            (fz / (k * sz) - 1.0).abs() < 2e-3,
            "axial FWHM {fz} nm vs {}",
            k * sz
        );
        // The 2D Gaussian (σ = 0.21 λ/NA, FWHM 0.4945 λ/NA) is 3.9 % narrower than the Airy
        // disk (FWHM 0.5145 λ/NA): it fits the core and the first ring together.
        let psf2 = Psf::generate(&fine, (1, 161, 161)).unwrap();
        let f2 = fwhm(&psf2.data.slice(ndarray::s![0, 80, ..]).to_vec()) * 4.0;
        let airy = 0.5145 * fine.wavelength_nm / fine.na;
        assert!(
            (-0.045..-0.035).contains(&(f2 / airy - 1.0)),
            "{f2} vs {airy}"
        );
    }

    #[test]
    fn born_wolf_first_dark_ring_is_at_0_61_lambda_over_na() {
        let p = PsfParams {
            pixel_size_nm: 5.0,
            ..params(PsfModel::BornWolf)
        };
        let psf = Psf::generate(&p, (1, 91, 91)).unwrap();
        let row = psf.data.slice(ndarray::s![0, 45, ..]).to_vec();
        let (i_min, _) = row[45 + 20..]
            .iter()
            .enumerate()
            .fold((0, f32::MAX), |b, (i, &v)| if v < b.1 { (i, v) } else { b });
        let r = (i_min + 20) as f64 * p.pixel_size_nm;
        let expected = 3.831_705_970_207_512 / (2.0 * PI) * p.wavelength_nm / p.na; // 0.6098 λ/NA
        assert!(
            (r - expected).abs() <= 0.5 * p.pixel_size_nm,
            "first zero at {r} nm, expected {expected}"
        );
        assert!(row[45 + 20 + i_min] < 1e-3 * row[45]);
    }

    #[test]
    fn born_wolf_axial_profile_is_the_paraxial_sinc2() {
        // Tiny pixels so that the centre pixel's value is the on-axis intensity.
        let p = PsfParams {
            pixel_size_nm: 2.0,
            z_step_nm: 40.0,
            ..params(PsfModel::BornWolf)
        };
        let psf = Psf::generate(&p, (101, 3, 3)).unwrap();
        let k0 = 2.0 * PI / p.wavelength_nm;
        let centre = f64::from(psf.data[[50, 1, 1]]);
        let mut worst = 0.0f64;
        for iz in 0..101 {
            let z = (iz as f64 - 50.0) * p.z_step_nm;
            let u = k0 * p.na * p.na * z / (4.0 * p.immersion_index);
            let sinc2 = if u == 0.0 { 1.0 } else { (u.sin() / u).powi(2) };
            worst = worst.max((f64::from(psf.data[[iz, 1, 1]]) / centre - sinc2).abs());
        }
        assert!(worst < 1e-3, "worst axial error {worst:e}");
    }

    #[test]
    fn even_empty_and_huge_shapes_are_errors() {
        let p = params(PsfModel::BornWolf);
        let m = message(Psf::generate(&p, (32, 64, 65)));
        assert!(m.contains("odd") && m.contains("65×65×33"), "{m}");
        let m = message(Psf::generate(&p, (1, 0, 5)));
        assert!(m.contains("empty axis"), "{m}");
        assert!(message(Psf::generate(&p, (1001, 1001, 1001))).contains("too large"));
    }

    #[test]
    fn impossible_parameters_are_errors_with_clear_messages() {
        let p = params(PsfModel::BornWolf);
        let bad = |q: PsfParams, three_d: bool| message(q.validate(three_d));
        let m = bad(PsfParams { na: 1.6, ..p }, false);
        assert!(m.contains("impossible") && m.contains("1.518"), "{m}");
        assert!(bad(
            PsfParams {
                na: 1.0,
                immersion_index: 1.0,
                ..p
            },
            false
        )
        .contains("impossible"));
        assert!(bad(PsfParams { na: 0.0, ..p }, false).contains("positive"));
        assert!(bad(PsfParams { na: f64::NAN, ..p }, false).contains("positive"));
        assert!(bad(
            PsfParams {
                wavelength_nm: 0.52,
                ..p
            },
            false
        )
        .contains("µm"));
        assert!(bad(
            PsfParams {
                wavelength_nm: 5000.0,
                ..p
            },
            false
        )
        .contains("200 and 2000"));
        assert!(bad(
            PsfParams {
                immersion_index: 0.5,
                ..p
            },
            false
        )
        .contains("1.0 and 2.0"));
        assert!(bad(
            PsfParams {
                pixel_size_nm: 0.0,
                ..p
            },
            false
        )
        .contains("pixel size"));
        assert!(bad(
            PsfParams {
                pixel_size_nm: 0.065,
                ..p
            },
            false
        )
        .contains("not µm"));
        // The z step matters for 3D only.
        let flat = PsfParams {
            z_step_nm: 0.0,
            ..p
        };
        assert!(flat.validate(false).is_ok());
        assert!(bad(flat, true).contains("z step"));
        assert!(Psf::generate(&flat, (1, 5, 5)).is_ok());
        assert!(message(Psf::generate(&flat, (3, 5, 5))).contains("z step"));
        // Undersampled pixels are fine.
        let coarse = PsfParams {
            pixel_size_nm: 400.0,
            ..p
        };
        assert!(coarse.pixel_size_nm > coarse.nyquist_pixel_nm());
        check_psf(&Psf::generate(&coarse, (5, 9, 9)).unwrap());
    }

    #[test]
    fn nyquist_sampling() {
        let p = PsfParams {
            na: 1.3,
            ..params(PsfModel::BornWolf)
        };
        assert!((p.nyquist_pixel_nm() - 100.0).abs() < 1e-9);
        // sin α = 1.3/1.518: λ / (2n(1 − cos α)) ≈ 354 nm.
        assert!(
            (p.nyquist_z_step_nm() - 354.4).abs() < 0.5,
            "{}",
            p.nyquist_z_step_nm()
        );
    }

    #[test]
    fn suggested_shapes() {
        let bw = params(PsfModel::BornWolf);
        // 2D: 5 Airy radii = 5·0.61·520/1.4 = 1133 nm = 17.4 px → 2·18+1.
        assert_eq!(suggested_shape(&bw, (1, 512, 512)), (1, 37, 37));
        assert_eq!(suggested_shape(&bw, (1, 20, 512)), (1, 37, 37));
        assert_eq!(suggested_shape(&bw, (1, 12, 9)), (1, 23, 17));
        // 3D: 2·nz−1 planes, defocus cone NA·z/n widens it.
        // nz = 10: 9·200 nm → +1660 nm → 2796 nm = 43.0 px → 87.
        assert_eq!(suggested_shape(&bw, (10, 512, 512)), (19, 87, 87));
        // Deep stacks: 65 planes; the cone of the planes ±6.4 µm away needs
        // 1133 + 5902 nm = 108.2 px → 219 px: 129 for images up to 129 px, else up to their size.
        assert_eq!(suggested_shape(&bw, (100, 100, 100)), (65, 129, 129));
        assert_eq!(suggested_shape(&bw, (100, 256, 256)), (65, 219, 219));
        assert_eq!(suggested_shape(&bw, (100, 160, 1024)), (65, 159, 219));
        // Gaussian: 5σ laterally (5·0.225·520/1.4 = 418 nm → 7 px), 5σ_z axially
        // (5·0.780·520·1.518/1.96 = 1570 nm → 8 planes).
        let g = params(PsfModel::Gaussian);
        assert_eq!(suggested_shape(&g, (40, 512, 512)), (17, 15, 15));
        assert_eq!(suggested_shape(&g, (3, 512, 512)), (5, 15, 15));
        assert_eq!(suggested_shape(&g, (1, 512, 512)).0, 1);
        // Degenerate input still gives an odd size.
        assert_eq!(suggested_shape(&bw, (0, 0, 0)), (1, 1, 1));
        let nan = PsfParams { na: f64::NAN, ..bw };
        let s = suggested_shape(&nan, (5, 64, 64));
        assert!(s.0 % 2 == 1 && s.1 % 2 == 1 && s.2 % 2 == 1);
        // for_image uses it and validates.
        assert_eq!(
            Psf::for_image(&bw, (10, 512, 512)).unwrap().shape(),
            (19, 87, 87)
        );
        assert!(
            message(Psf::for_image(&PsfParams { na: 2.0, ..bw }, (1, 64, 64)))
                .contains("impossible")
        );
        assert!(message(Psf::for_image(&bw, (1, 0, 64))).contains("empty"));
    }

    #[test]
    fn born_wolf_65x65x33_is_fast() {
        let p = params(PsfModel::BornWolf);
        let t = std::time::Instant::now();
        let psf = Psf::generate(&p, (33, 65, 65)).unwrap();
        let elapsed = t.elapsed();
        eprintln!("Born & Wolf 65×65×33: {elapsed:?}");
        assert_eq!(psf.shape(), (33, 65, 65));
    }

    #[test]
    fn voxel_size_is_in_micrometres() {
        let v = Psf::voxel_size(&params(PsfModel::Gaussian));
        assert_eq!((v.z, v.y, v.x), (0.2, 0.065, 0.065));
    }
}
