//! Classical denoising of fluorescence images: the Poisson–Gaussian noise estimated from the
//! image ([`super::noise_model`]) or given, the generalised Anscombe transformation to unit
//! variance ([`super::gat`]), BM3D ([`super::bm3d`]), and the exact unbiased inverse
//! (closed form). The floor every learned method is compared with.
//!
//! A stack is denoised plane by plane (2D BM3D per plane) with one noise model for the whole
//! stack; the result keeps the voxel size.

use super::bm3d::{bm3d_plane, Bm3dOptions};
use super::gat::{gat_forward, gat_inverse};
use super::noise_model::{estimate_noise, NoiseEstimateOptions, NoiseModel};
use crate::progress::{check_cancel, Progress, SubProgress};
use crate::{invalid, Error, Result, Volume};
use ndarray::{Array2, Array3, Axis};

/// Options of [`denoise_classical`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ClassicalOptions {
    /// The noise; `None` estimates it from the image.
    pub noise: Option<NoiseModel>,
    /// BM3D's parameters (`sigma` is set to 1: the stabilised noise).
    pub bm3d: Bm3dOptions,
}

/// Result of [`denoise_classical`].
#[derive(Debug, Clone)]
pub struct Denoised {
    pub image: Volume,
    /// The noise model used.
    pub noise: NoiseModel,
    /// Whether it was estimated from the image (else given).
    pub estimated: bool,
}

/// f32 image-sized buffers alive at once besides the input: the result, and per plane the
/// stabilised plane, the basic estimate and the two accumulators (a plane each).
const VOLUME_COPIES: u64 = 1;
const PLANE_COPIES: u64 = 5;

/// Denoises `image` (a plane or a stack): GAT with the given or estimated noise, BM3D per
/// plane, exact unbiased inverse GAT. The input is not changed. The noise model and, for a
/// stack, the plane-by-plane processing are logged.
pub fn denoise_classical(
    image: &Volume,
    options: &ClassicalOptions,
    progress: &mut dyn Progress,
) -> Result<Denoised> {
    let (nz, ny, nx) = image.shape();
    if nz == 0 || ny < 8 || nx < 8 {
        return invalid!("the image is {nx}×{ny}×{nz} pixels; BM3D needs at least 8×8");
    }
    image.check_finite("the image")?;
    let bytes = 4 * (VOLUME_COPIES * image.data.len() as u64 + PLANE_COPIES * (ny * nx) as u64);
    if let Some(available) = crate::memory::available_memory() {
        if bytes > available {
            return Err(Error::OutOfMemory {
                needed_mib: bytes >> 20,
                available_mib: available >> 20,
            });
        }
    }
    let (noise, estimated) = match options.noise {
        Some(m) => {
            m.check()?;
            (m, false)
        }
        None => {
            progress.status("estimating the noise");
            let e = estimate_noise(image, &NoiseEstimateOptions::default())?;
            (e.model, true)
        }
    };
    progress.log(&format!(
        "Fluorecon: {} {}",
        if estimated { "estimated" } else { "given" },
        noise.describe()
    ));
    if nz > 1 {
        progress.log(&format!(
            "Fluorecon: BM3D denoises the {nz} planes of the stack one by one (2D)"
        ));
    }
    let bm3d = Bm3dOptions {
        sigma: 1.0,
        ..options.bm3d
    };
    let mut out = Array3::<f32>::zeros((nz, ny, nx));
    for (z, (plane, mut dest)) in image
        .data
        .axis_iter(Axis(0))
        .zip(out.axis_iter_mut(Axis(0)))
        .enumerate()
    {
        check_cancel(progress)?;
        let stabilised: Array2<f32> = plane.mapv(|v| gat_forward(v as f64, &noise) as f32);
        let mut part = SubProgress::new(progress, z, nz);
        let d = bm3d_plane(stabilised.view(), &bm3d, &mut part)?;
        dest.zip_mut_with(&d, |o, &v| *o = gat_inverse(v as f64, &noise) as f32);
    }
    progress.fraction(1.0);
    Ok(Denoised {
        image: Volume::new(out, image.voxel),
        noise,
        estimated,
    })
}
