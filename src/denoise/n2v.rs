//! Noise2Void (Krull, Buchholz & Jug, CVPR 2019): a U-Net learns to predict each pixel
//! from its surroundings only, by hiding a few pixels of every training patch (replaced by
//! a random neighbour) and computing the loss on those pixels alone. Pixel-wise
//! independent noise cannot be predicted from the neighbours, the signal can: the network
//! learns the signal from the noisy image itself.
//!
//! N2V2 (Höck et al. 2022) removes N2V's checkerboard artefacts: max-blur pooling, no
//! top-level skip connection (see [`crate::nn::unet`]) and the median of the neighbourhood
//! instead of a random neighbour.

use super::patches::{check_patches, PatchSet};
use super::{describe_data, finish_training, restore, RestoreOptions, Restored, METHOD_N2V};
use crate::image::check_finite;
use crate::nn::{new_unet, train, Model, ModelInfo, Normalization, Objective};
use crate::nn::{TrainOptions, UNet, UNetConfig};
use crate::progress::{check_cancel, Progress};
use crate::{invalid, Result, Volume};
use candle_core::{ModuleT, Tensor};
use ndarray::Array3;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Which pixels are hidden and what replaces them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct N2vMasking {
    /// Percentage of pixels masked, 0.05–25 (N2V: 0.2): one pixel per box of side
    /// round((100 / p)^(1/d)) in d dimensions (stratified sampling).
    pub masked_percent: f64,
    /// Replacement neighbourhood radius, pixels (N2V: 5): the square (cube) of side
    /// 2·radius + 1 around the masked pixel, the pixel itself excluded.
    pub radius: usize,
    /// Replace by the median of the neighbourhood (N2V2) instead of a random neighbour.
    pub median: bool,
}

impl Default for N2vMasking {
    fn default() -> Self {
        N2vMasking {
            masked_percent: 0.2,
            radius: 5,
            median: false,
        }
    }
}

impl N2vMasking {
    /// Side of the stratification box in pixels for a `dims`-dimensional patch.
    pub fn box_side(&self, dims: usize) -> usize {
        (100.0 / self.masked_percent)
            .powf(1.0 / dims as f64)
            .round()
            .max(1.0) as usize
    }

    fn validate(&self) -> Result<()> {
        if !(0.05..=25.0).contains(&self.masked_percent) {
            return invalid!(
                "the masked percentage must be between 0.05 and 25 %, not {}",
                self.masked_percent
            );
        }
        if self.radius == 0 || self.radius > 32 {
            return invalid!(
                "the replacement radius must be 1–32 pixels, not {}",
                self.radius
            );
        }
        Ok(())
    }
}

/// Masks `patch` (z, y, x) for N2V: returns the network input (masked pixels replaced) and
/// the mask (1 at masked pixels, else 0). `dims` = 2 masks each plane of the patch in y-x
/// (one plane for 2D networks), 3 masks in z-y-x.
pub fn n2v_mask(
    patch: &Array3<f32>,
    masking: &N2vMasking,
    dims: usize,
    rng: &mut impl Rng,
) -> (Array3<f32>, Array3<f32>) {
    let (nz, ny, nx) = patch.dim();
    let b = masking.box_side(dims);
    let bz = if dims == 3 { b } else { 1 };
    let r = masking.radius as isize;
    let rz = if dims == 3 { r } else { 0 };
    let mut input = patch.clone();
    let mut mask = Array3::<f32>::zeros(patch.dim());
    let inside = |z: isize, y: isize, x: isize| {
        z >= 0 && y >= 0 && x >= 0 && (z as usize) < nz && (y as usize) < ny && (x as usize) < nx
    };
    let mut neighbours = Vec::new();
    for z0 in (0..nz).step_by(bz) {
        for y0 in (0..ny).step_by(b) {
            for x0 in (0..nx).step_by(b) {
                let z = rng.gen_range(z0..(z0 + bz).min(nz));
                let y = rng.gen_range(y0..(y0 + b).min(ny));
                let x = rng.gen_range(x0..(x0 + b).min(nx));
                let (zi, yi, xi) = (z as isize, y as isize, x as isize);
                let value = if masking.median {
                    neighbours.clear();
                    for dz in -rz..=rz {
                        for dy in -r..=r {
                            for dx in -r..=r {
                                if (dz, dy, dx) != (0, 0, 0) && inside(zi + dz, yi + dy, xi + dx) {
                                    neighbours.push(
                                        patch[[
                                            (zi + dz) as usize,
                                            (yi + dy) as usize,
                                            (xi + dx) as usize,
                                        ]],
                                    );
                                }
                            }
                        }
                    }
                    median(&mut neighbours).unwrap_or(patch[[z, y, x]])
                } else {
                    // Uniform among the in-bounds neighbours, never the pixel itself.
                    let mut found = None;
                    for _ in 0..1000 {
                        let d = (
                            rng.gen_range(-rz..=rz),
                            rng.gen_range(-r..=r),
                            rng.gen_range(-r..=r),
                        );
                        if d != (0, 0, 0) && inside(zi + d.0, yi + d.1, xi + d.2) {
                            found = Some(
                                patch[[
                                    (zi + d.0) as usize,
                                    (yi + d.1) as usize,
                                    (xi + d.2) as usize,
                                ]],
                            );
                            break;
                        }
                    }
                    match found {
                        Some(v) => v,
                        None => continue, // a 1-pixel patch has no neighbour: leave unmasked
                    }
                };
                input[[z, y, x]] = value;
                mask[[z, y, x]] = 1.0;
            }
        }
    }
    (input, mask)
}

fn median(v: &mut [f32]) -> Option<f32> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    })
}

/// Everything about N2V training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct N2vOptions {
    /// Network; `n2v2: true` also selects median replacement.
    pub unet: UNetConfig,
    pub train: TrainOptions,
    pub masking: N2vMasking,
    /// Lateral patch side, pixels (multiple of 2^depth; N2V: 64).
    pub patch: usize,
    /// Patch depth in planes for 3D networks (multiple of 2^depth; N2V: 16).
    pub patch_z: usize,
    /// Patches per training step (N2V: 16–128).
    pub batch: usize,
    /// Fraction of the patches held out for validation (N2V: 0.1).
    pub validation_fraction: f64,
    /// Model name stored in `model.json`.
    pub name: String,
}

impl Default for N2vOptions {
    /// N2V's architecture (depth 2, kernel 3, batch norm, no residual) with 16 instead of
    /// 32 filters and a shorter schedule (20 epochs × 50 steps of 16 patches of 64²), which
    /// train in minutes on a CPU.
    fn default() -> Self {
        N2vOptions {
            unet: UNetConfig {
                dims: 2,
                depth: 2,
                base_filters: 16,
                kernel_size: 3,
                batch_norm: true,
                residual: false,
                ..Default::default()
            },
            train: TrainOptions {
                epochs: 20,
                steps_per_epoch: 50,
                ..Default::default()
            },
            masking: N2vMasking::default(),
            patch: 64,
            patch_z: 16,
            batch: 16,
            validation_fraction: 0.1,
            name: "n2v".into(),
        }
    }
}

impl N2vOptions {
    /// The N2V2 variant of these options: max-blur pooling, no top skip connection, no
    /// residual, median replacement.
    pub fn n2v2(mut self) -> Self {
        self.unet.n2v2 = true;
        self.unet.residual = false;
        self.masking.median = true;
        self
    }

    fn validate(&self) -> Result<()> {
        self.unet
            .validate()
            .map_err(|e| crate::Error::InvalidInput(e.to_string()))?;
        self.train.validate()?;
        self.masking.validate()?;
        if self.unet.in_channels != 1 || self.unet.out_channels != 1 {
            return invalid!("Noise2Void networks have one input and one output channel");
        }
        check_patches(&self.unet, self.patch, self.patch_z, self.batch)
    }

    fn patch_shape(&self) -> (usize, usize, usize) {
        let pz = if self.unet.dims == 3 { self.patch_z } else { 1 };
        (pz, self.patch, self.patch)
    }
}

/// The N2V objective: masked MSE on freshly masked, augmented patches.
struct N2vObjective<'a> {
    net: &'a UNet,
    data: PatchSet,
    masking: N2vMasking,
    batch: usize,
    /// Fixed validation batches: (masked input, target, mask).
    validation: Vec<(Tensor, Tensor, Tensor)>,
}

/// Σ mask·(prediction − target)² / Σ mask.
fn masked_mse(pred: &Tensor, target: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let se = ((pred - target)?.sqr()? * mask)?.sum_all()?;
    let n = mask.sum_all()?.affine(1.0, 1e-6)?;
    se / n
}

impl N2vObjective<'_> {
    fn batch_tensors(
        &self,
        patches: Vec<Array3<f32>>,
        rng: &mut ChaCha8Rng,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let dims = self.data.dims;
        let mut inputs = Vec::with_capacity(patches.len());
        let mut masks = Vec::with_capacity(patches.len());
        for p in &patches {
            let (input, mask) = n2v_mask(p, &self.masking, dims, rng);
            inputs.push(input);
            masks.push(mask);
        }
        Ok((
            self.data.tensor(&inputs)?,
            self.data.tensor(&patches)?,
            self.data.tensor(&masks)?,
        ))
    }
}

impl Objective for N2vObjective<'_> {
    fn training_loss(&mut self, rng: &mut ChaCha8Rng) -> Result<Tensor> {
        let patches: Vec<_> = (0..self.batch).map(|_| self.data.draw(rng).0).collect();
        let (input, target, mask) = self.batch_tensors(patches, rng)?;
        let pred = self.net.forward_t(&input, true)?;
        Ok(masked_mse(&pred, &target, &mask)?)
    }

    fn validation_loss(&mut self) -> Result<f64> {
        let (mut sum, mut n) = (0.0, 0.0);
        for (input, target, mask) in &self.validation {
            let pred = self.net.forward_t(input, false)?;
            let count = mask.sum_all()?.to_scalar::<f32>()? as f64;
            sum += masked_mse(&pred, target, mask)?.to_scalar::<f32>()? as f64 * count;
            n += count;
        }
        Ok(sum / n.max(1.0))
    }
}

/// Trains a Noise2Void model on `images` (each a plane or stack; 2D networks learn from
/// every plane). Returns the model with the weights of the best validation epoch, ready to
/// [`restore`] or save. Each epoch's losses go to [`Progress::epoch`].
pub fn train_n2v(
    images: &[&Volume],
    options: &N2vOptions,
    progress: &mut dyn Progress,
) -> Result<Model> {
    options.validate()?;
    let (model, _) = crate::nn::run_on_device(options.train.device, progress, |progress| {
        train_n2v_here(images, options, progress)
    })?;
    model.into_device(&candle_core::Device::Cpu)
}

/// [`train_n2v`] on [`crate::nn::device()`].
fn train_n2v_here(
    images: &[&Volume],
    options: &N2vOptions,
    progress: &mut dyn Progress,
) -> Result<Model> {
    if images.is_empty() {
        return invalid!("Noise2Void needs at least one training image");
    }
    for (i, v) in images.iter().enumerate() {
        check_finite(&v.data, &format!("training image {}", i + 1))?;
    }
    let normalization =
        Normalization::mean_std_of(images.iter().flat_map(|v| v.data.iter().copied()));
    let affine = normalization.affine(&[])?;
    let inputs: Vec<Array3<f32>> = images
        .iter()
        .map(|v| v.data.mapv(|x| affine.apply(x)))
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(options.train.seed);
    let data = PatchSet::new(
        inputs,
        None,
        options.patch_shape(),
        options.unet.dims,
        options.validation_fraction,
        &mut rng,
    )?;
    if let Normalization::MeanStd { mean, std } = normalization {
        if std <= mean.abs().max(1.0) * crate::nn::normalize::MIN_RELATIVE_STD {
            return invalid!(
                "the training images are constant (every pixel is {mean}): Noise2Void learns \
                 the noise of the images it is given, and these hold none"
            );
        }
    }
    normalization.validate()?;
    let mut masking = options.masking;
    masking.median |= options.unet.n2v2;
    let (vars, net) = new_unet(&options.unet, options.train.seed)?;
    let device = crate::nn::device_name();
    progress.log(&format!(
        "Noise2Void{}: {} training and {} validation patches of {}×{}×{} pixels, {} on {}",
        if options.unet.n2v2 { " (N2V2)" } else { "" },
        data.train.len(),
        data.validation.len(),
        options.patch,
        options.patch,
        options.patch_shape().0,
        describe_net(&options.unet),
        device
    ));
    let mut objective = N2vObjective {
        net: &net,
        data,
        masking,
        batch: options.batch,
        validation: Vec::new(),
    };
    // Fixed validation masks, drawn once.
    let mut val_rng = ChaCha8Rng::seed_from_u64(options.train.seed ^ 0x7A11);
    let val_at = objective.data.validation.clone();
    for chunk in val_at.chunks(options.batch) {
        let patches = chunk
            .iter()
            .map(|&at| objective.data.get(at, 0).0)
            .collect();
        let batch = objective.batch_tensors(patches, &mut val_rng)?;
        objective.validation.push(batch);
    }
    let report = train(&vars, &mut objective, &options.train, progress)?;
    let mut info = ModelInfo::new(
        METHOD_N2V,
        &options.name,
        options.unet.clone(),
        normalization,
    );
    info.training = serde_json::to_value(options).expect("options serialise");
    info.history = report;
    info.data = describe_data(images, "noisy");
    Ok(Model { info, vars, net })
}

/// "2D U-Net depth 2, 16 filters, kernel 3, batch norm".
pub(crate) fn describe_net(c: &UNetConfig) -> String {
    format!(
        "{}D U-Net depth {}, {} filters, kernel {}{}{}{}",
        c.dims,
        c.depth,
        c.base_filters,
        c.kernel_size,
        if c.batch_norm { ", batch norm" } else { "" },
        if c.residual { ", residual" } else { "" },
        if c.n2v2 { ", N2V2" } else { "" }
    )
}

/// One-click Noise2Void: trains on `image` and denoises it. Returns the denoised image and
/// the trained model (to save if wanted).
pub fn denoise_n2v(
    image: &Volume,
    options: &N2vOptions,
    restore_options: &RestoreOptions,
    progress: &mut dyn Progress,
) -> Result<(Restored, Model)> {
    let (mut restored, model) =
        denoise_n2v_each(&[image], options, restore_options, None, progress)?;
    Ok((restored.pop().expect("one image"), model))
}

/// One-click Noise2Void on several images (the channels and time points of a hyperstack):
/// trains one model on all of them, saves it into `save_to` when given, then denoises each
/// image with it (image k reports part k of the progress). Returns the denoised images in
/// order and the model.
pub fn denoise_n2v_each(
    images: &[&Volume],
    options: &N2vOptions,
    restore_options: &RestoreOptions,
    save_to: Option<&std::path::Path>,
    progress: &mut dyn Progress,
) -> Result<(Vec<Restored>, Model)> {
    let model = {
        let mut sub = crate::progress::SubProgress::new(progress, 0, 1);
        train_n2v(images, options, &mut sub)?
    };
    finish_training(&model, save_to, progress)?;
    progress.status("Denoising…");
    let mut restored = Vec::with_capacity(images.len());
    for (k, image) in images.iter().enumerate() {
        check_cancel(progress)?;
        let mut part = crate::progress::SubProgress::new(progress, k, images.len());
        restored.push(restore(&model, image, restore_options, &mut part)?);
    }
    Ok((restored, model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn masking_is_stratified_and_never_copies_the_pixel_itself() {
        // Every pixel value unique, so the replacement's origin can be traced.
        let patch = Array3::from_shape_fn((1, 64, 64), |(_, y, x)| (64 * y + x) as f32);
        let masking = N2vMasking {
            masked_percent: 1.6,
            radius: 5,
            median: false,
        };
        let b = masking.box_side(2);
        assert_eq!(b, 8); // round(√(100/1.6)) = round(7.9)
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut total = 0.0;
        let trials = 50;
        for _ in 0..trials {
            let (input, mask) = n2v_mask(&patch, &masking, 2, &mut rng);
            let masked: Vec<_> = mask.indexed_iter().filter(|(_, &m)| m == 1.0).collect();
            // One per 8×8 box.
            assert_eq!(masked.len(), 64);
            let boxes: HashSet<_> = masked.iter().map(|((_, y, x), _)| (y / b, x / b)).collect();
            assert_eq!(boxes.len(), 64);
            for ((z, y, x), _) in masked {
                let v = input[[z, y, x]] as usize;
                let (sy, sx) = (v / 64, v % 64);
                assert!((sy, sx) != (y, x), "pixel replaced by itself");
                assert!(
                    sy.abs_diff(y) <= 5 && sx.abs_diff(x) <= 5,
                    "not a neighbour"
                );
            }
            // Unmasked pixels untouched.
            for ((z, y, x), &m) in mask.indexed_iter() {
                if m == 0.0 {
                    assert_eq!(input[[z, y, x]], patch[[z, y, x]]);
                }
            }
            total += mask.sum() as f64 / mask.len() as f64;
        }
        let fraction = 100.0 * total / trials as f64;
        assert!((fraction - 100.0 / 64.0).abs() < 1e-9, "{fraction} %");
    }

    #[test]
    fn median_replacement_and_3d_masking() {
        let patch = Array3::from_shape_fn((8, 16, 16), |(z, y, x)| (z * 256 + y * 16 + x) as f32);
        let masking = N2vMasking {
            masked_percent: 1.0,
            radius: 1,
            median: true,
        };
        assert_eq!(masking.box_side(3), 5); // round(100^(1/3)) = round(4.64)
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (input, mask) = n2v_mask(&patch, &masking, 3, &mut rng);
        // Boxes: 2 × 4 × 4 (partial boxes included).
        assert_eq!(mask.sum() as usize, 2 * 4 * 4);
        for ((z, y, x), &m) in mask.indexed_iter() {
            let interior = (1..7).contains(&z) && (1..15).contains(&y) && (1..15).contains(&x);
            if m == 1.0 && interior {
                // By symmetry, the median of a linear ramp's 26 neighbours (centre
                // excluded) is the centre value.
                assert_eq!(input[[z, y, x]], patch[[z, y, x]]);
            }
        }
    }

    #[test]
    fn bad_options_are_refused() {
        let v = Volume::new(Array3::zeros((1, 64, 64)), Default::default());
        let mut o = N2vOptions {
            patch: 30,
            ..Default::default()
        };
        let e = train_n2v(&[&v], &o, &mut crate::NoProgress).unwrap_err();
        assert!(e.to_string().contains("multiple of 4"), "{e}");
        o.patch = 128;
        let e = train_n2v(&[&v], &o, &mut crate::NoProgress).unwrap_err();
        assert!(
            e.to_string().contains("smaller than one training patch"),
            "{e}"
        );
        let mut nan = v.clone();
        nan.data[[0, 3, 4]] = f32::NAN;
        o.patch = 32;
        let e = train_n2v(&[&nan], &o, &mut crate::NoProgress).unwrap_err();
        assert!(e.to_string().contains("not numbers"), "{e}");
    }
}
