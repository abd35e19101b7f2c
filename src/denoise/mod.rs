//! Denoising with U-Nets: Noise2Void (self-supervised, [`n2v`]; Krull et al. 2019, N2V2
//! Höck et al. 2022) and CARE (paired low/high-SNR training, [`care`]; Weigert et al.
//! 2018), and [`restore`], which applies a trained model of either kind to an image of any
//! size.
//!
//! Classical denoising needs no training: [`classical::denoise_classical`] estimates the
//! Poisson–Gaussian noise from the image ([`noise_model`]), stabilises it ([`gat`]) and
//! filters it with BM3D ([`bm3d`]).
//!
//! A 2D model restores a stack plane by plane; a 3D model restores the volume. Images are
//! single-channel [`Volume`]s; the result keeps the voxel size.

pub mod bm3d;
pub mod care;
pub mod classical;
pub mod gat;
pub mod n2v;
pub mod noise_model;
mod patches;

use crate::image::check_finite;
use crate::nn::layers::softplus;
use crate::nn::tiling::{check_memory, predict, TileOptions};
use crate::nn::{device_name, run_on_device, save_model, Model, Normalization};
use crate::progress::{check_cancel, Progress};
use crate::{invalid, Result, Volume};
use candle_core::Tensor;
use ndarray::Array3;

/// Method tag of Noise2Void models in `model.json`.
pub const METHOD_N2V: &str = "n2v";
/// Method tag of CARE models.
pub const METHOD_CARE: &str = "care";
/// Method tag of probabilistic CARE models (two output channels: Laplace mean and scale).
pub const METHOD_CARE_PROBABILISTIC: &str = "care-probabilistic";

/// Options of [`restore`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestoreOptions {
    pub tiles: TileOptions,
    /// Overrides the model's normalisation (e.g. percentiles instead of the stored training
    /// statistics); `None` uses the model's.
    pub normalization: Option<Normalization>,
    /// Where to run the network (the CPU for now; a CUDA request is logged with the reason).
    pub device: crate::device::DeviceRequest,
}

/// Result of [`restore`].
#[derive(Debug, Clone)]
pub struct Restored {
    pub image: Volume,
    /// Probabilistic CARE only: the per-pixel standard deviation of the prediction
    /// (√2 × the Laplace scale), in the image's intensity units.
    pub uncertainty: Option<Volume>,
    /// The device that ran the network, for the log.
    pub device: String,
}

/// Checks that `model` can be applied to `image`; the message says what does not fit.
pub fn check_model_fits(model: &Model, image: &Volume) -> Result<()> {
    let info = &model.info;
    let arch = &info.architecture;
    if ![METHOD_N2V, METHOD_CARE, METHOD_CARE_PROBABILISTIC].contains(&info.method.as_str()) {
        return invalid!(
            "model '{}' is a {} model, not a denoising (Noise2Void or CARE) model",
            info.name,
            info.method
        );
    }
    if arch.in_channels != 1 {
        return invalid!(
            "model '{}' expects {} channels per pixel but Fluorecon restores one channel at a \
             time; split the channels or use a single-channel model",
            info.name,
            arch.in_channels
        );
    }
    let expected_out = if info.method == METHOD_CARE_PROBABILISTIC {
        2
    } else {
        1
    };
    if arch.out_channels != expected_out {
        return invalid!(
            "model '{}' ({}) should have {expected_out} output channel(s) but has {}",
            info.name,
            info.method,
            arch.out_channels
        );
    }
    let (nz, ny, nx) = image.shape();
    if nz == 0 || ny == 0 || nx == 0 {
        return invalid!("the image is empty ({nx}×{ny}×{nz} pixels)");
    }
    if arch.dims == 3 && nz < 2 {
        return invalid!(
            "model '{}' is a 3D model but the image is a single plane; use a 2D model",
            info.name
        );
    }
    Ok(())
}

/// Checks that `model` gives an uncertainty image (a probabilistic CARE model); the message
/// says what kind of model it is instead.
pub fn check_uncertainty(model: &Model) -> Result<()> {
    if model.info.method != METHOD_CARE_PROBABILISTIC {
        return invalid!(
            "an uncertainty image needs a probabilistic CARE model; '{}' is a {} model",
            model.info.name,
            model.info.method
        );
    }
    Ok(())
}

/// Ends a training: logs the best validation loss and saves the model into `save_to` when
/// given, unless the user cancelled meanwhile (then nothing is written).
pub fn finish_training(
    model: &Model,
    save_to: Option<&std::path::Path>,
    progress: &mut dyn Progress,
) -> Result<()> {
    let h = &model.info.history;
    progress.log(&format!(
        "{}: best validation loss {:.5} at epoch {}/{}, {:.1} s",
        model.info.method,
        h.best_validation_loss,
        h.best_epoch,
        h.history.len(),
        h.seconds
    ));
    if let Some(dir) = save_to {
        check_cancel(progress)?;
        save_model(dir, &model.vars, &model.info)?;
        progress.log(&format!("Model saved to {}", dir.display()));
    }
    Ok(())
}

/// Applies a trained N2V or CARE model to `image` (tiled, any size). The input is not
/// changed.
pub fn restore(
    model: &Model,
    image: &Volume,
    options: &RestoreOptions,
    progress: &mut dyn Progress,
) -> Result<Restored> {
    check_model_fits(model, image)?;
    check_finite(&image.data, "the image")?;
    // Before any copy: the normalised input and the result, and for the uncertainty the
    // scale channel's conversion (its intermediate copies).
    let copies = if model.info.method == METHOD_CARE_PROBABILISTIC {
        2 + UNCERTAINTY_COPIES
    } else {
        2
    };
    check_memory(&model.net, image.shape(), copies, &options.tiles)?;
    let pixels = image.data.as_slice().expect("standard layout");
    let (lo, hi) = pixels
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if lo == hi {
        return invalid!(
            "the image is constant (every pixel is {lo}): there is nothing to restore"
        );
    }
    let norm = options.normalization.unwrap_or(model.info.normalization);
    norm.validate()?;
    let affine = norm.affine(pixels)?;
    let input = image.data.mapv(|v| affine.apply(v));
    // Networks see values of a few units after normalisation; far beyond, their output means
    // nothing (and overflows).
    let reach = input.iter().fold(0f32, |m, v| m.max(v.abs()));
    if reach.is_nan() || reach > MAX_NORMALISED {
        return invalid!(
            "the image's values ({lo} to {hi}) are far outside what model '{}' was trained on \
             (they normalise to ±{reach:e}, training data to about ±1): use a model trained on \
             images like this one, or normalise by the image's own percentiles",
            model.info.name
        );
    }
    let (mut out, device) = run_on_device(options.device, progress, |progress| {
        progress.log(&format!(
            "Restoring with model '{}' ({} {}D) on {}",
            model.info.name,
            model.info.method,
            model.info.architecture.dims,
            device_name()
        ));
        let net = model.inference_net(&crate::nn::device())?;
        predict(&net, &input, &options.tiles, progress)
    })?;
    let uncertainty = if model.info.method == METHOD_CARE_PROBABILISTIC {
        let raw = out.pop().expect("two output channels");
        Some(Volume::new(laplace_std(&raw, affine.scale)?, image.voxel))
    } else {
        None
    };
    let restored = out.swap_remove(0).mapv(|v| affine.undo(v));
    if !restored.iter().all(|v| v.is_finite()) {
        return invalid!(
            "model '{}' gave values that are not numbers on this image (the image is outside \
             the range the model was trained on)",
            model.info.name
        );
    }
    Ok(Restored {
        image: Volume::new(restored, image.voxel),
        uncertainty,
        device,
    })
}

/// Largest normalised input value (|x − offset| / scale) a network is given.
const MAX_NORMALISED: f32 = 1e6;

/// Smallest Laplace scale the probabilistic head can output (normalised units).
pub(crate) const MIN_SCALE: f64 = 1e-3;

/// The Laplace scale b = softplus(raw) + MIN_SCALE of the probabilistic head.
pub(crate) fn laplace_scale(raw: &Tensor) -> candle_core::Result<Tensor> {
    softplus(raw)?.affine(1.0, MIN_SCALE)
}

/// Image-sized f32 arrays alive at once in [`laplace_std`] at most (its input tensor, the
/// intermediates of the softplus, the result).
const UNCERTAINTY_COPIES: usize = 4;

/// Standard deviation √2·b in image units from the raw scale channel.
fn laplace_std(raw: &Array3<f32>, unit: f32) -> Result<Array3<f32>> {
    let t = Tensor::from_slice(
        raw.as_slice().expect("standard layout"),
        raw.len(),
        &crate::nn::device(),
    )?;
    let b = laplace_scale(&t)?.to_vec1::<f32>()?;
    let s = std::f32::consts::SQRT_2 * unit.abs();
    Ok(
        Array3::from_shape_vec(raw.dim(), b.into_iter().map(|v| v * s).collect())
            .expect("same length"),
    )
}

/// "2 images: 128×128×1, …; pixel 0.100 µm" for `model.json`.
pub(crate) fn describe_data(images: &[&Volume], what: &str) -> String {
    let sizes: Vec<String> = images
        .iter()
        .map(|v| {
            let (nz, ny, nx) = v.shape();
            format!("{nx}×{ny}×{nz}")
        })
        .collect();
    let voxel = images.first().map(|v| v.voxel).unwrap_or_default();
    format!(
        "{} {what} image(s) of {} pixels (x×y×z); voxel {:.4}×{:.4}×{:.4} µm (x×y×z)",
        images.len(),
        sizes.join(", "),
        voxel.x,
        voxel.y,
        voxel.z
    )
}
