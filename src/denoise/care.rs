//! CARE, content-aware image restoration (Weigert et al., Nature Methods 2018): a U-Net
//! learns the map from low-SNR to high-SNR images of the same samples (pairs acquired
//! with low and high exposure), with the mean absolute error as loss.
//!
//! Probabilistic CARE predicts per pixel a Laplace distribution (mean μ and scale b) and is
//! trained on its negative log-likelihood |y − μ| / b + ln 2b; b gives an uncertainty map.
//!
//! Normalisation: each low-SNR image is normalised by its own percentiles (CSBDeep: 2 /
//! 99.8) and its high-SNR partner by the same map, so the network's output is undone into
//! the input's units.

use super::n2v::describe_net;
use super::patches::{check_patches, PatchSet};
use super::{describe_data, laplace_scale, METHOD_CARE, METHOD_CARE_PROBABILISTIC};
use crate::image::check_finite;
use crate::nn::{new_unet, train, Model, ModelInfo, Normalization, Objective};
use crate::nn::{TrainOptions, UNet, UNetConfig};
use crate::progress::Progress;
use crate::{invalid, Result, Volume};
use candle_core::{ModuleT, Tensor};
use ndarray::Array3;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Everything about CARE training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CareOptions {
    /// Network; `out_channels` is set from `probabilistic`.
    pub unet: UNetConfig,
    pub train: TrainOptions,
    /// Predict a Laplace mean and scale per pixel (uncertainty output).
    pub probabilistic: bool,
    /// Lateral patch side, pixels (multiple of 2^depth; CARE: 128 in 2D, 64 in 3D).
    pub patch: usize,
    /// Patch depth for 3D networks (CARE: 16).
    pub patch_z: usize,
    pub batch: usize,
    pub validation_fraction: f64,
    /// Percentile normalisation of the inputs (the targets follow the input's map).
    pub normalization: Normalization,
    pub name: String,
}

impl Default for CareOptions {
    /// CARE's 2D architecture (depth 2, kernel 5, residual) with 16 instead of 32 filters
    /// and a CPU-sized schedule (20 epochs × 50 steps of 16 patches of 64²).
    fn default() -> Self {
        CareOptions {
            unet: UNetConfig {
                base_filters: 16,
                ..Default::default()
            },
            train: TrainOptions {
                epochs: 20,
                steps_per_epoch: 50,
                ..Default::default()
            },
            probabilistic: false,
            patch: 64,
            patch_z: 16,
            batch: 16,
            validation_fraction: 0.1,
            normalization: Normalization::Percentile {
                low: 2.0,
                high: 99.8,
            },
            name: "care".into(),
        }
    }
}

impl CareOptions {
    fn network(&self) -> UNetConfig {
        let mut c = self.unet.clone();
        c.in_channels = 1;
        c.out_channels = if self.probabilistic { 2 } else { 1 };
        c
    }

    fn validate(&self) -> Result<()> {
        self.network()
            .validate()
            .map_err(|e| crate::Error::InvalidInput(e.to_string()))?;
        self.train.validate()?;
        check_patches(&self.unet, self.patch, self.patch_z, self.batch)
    }
}

struct CareObjective<'a> {
    net: &'a UNet,
    data: PatchSet,
    batch: usize,
    probabilistic: bool,
    validation: Vec<(Tensor, Tensor)>,
}

impl CareObjective<'_> {
    /// Mean absolute error, or the Laplace negative log-likelihood (per pixel, mean).
    fn loss(&self, pred: &Tensor, target: &Tensor) -> candle_core::Result<Tensor> {
        if !self.probabilistic {
            return (pred - target)?.abs()?.mean_all();
        }
        let mean = pred.narrow(1, 0, 1)?;
        let scale = laplace_scale(&pred.narrow(1, 1, 1)?)?;
        let nll = ((mean - target)?.abs()? / &scale)? + scale.affine(2.0, 0.0)?.log()?;
        nll?.mean_all()
    }
}

impl Objective for CareObjective<'_> {
    fn training_loss(&mut self, rng: &mut ChaCha8Rng) -> Result<Tensor> {
        let (mut inputs, mut targets) = (Vec::new(), Vec::new());
        for _ in 0..self.batch {
            let (i, t) = self.data.draw(rng);
            inputs.push(i);
            targets.push(t.expect("CARE has targets"));
        }
        let input = self.data.tensor(&inputs)?;
        let target = self.data.tensor(&targets)?;
        let pred = self.net.forward_t(&input, true)?;
        Ok(self.loss(&pred, &target)?)
    }

    fn validation_loss(&mut self) -> Result<f64> {
        let mut sum = 0.0;
        let mut n = 0usize;
        for (input, target) in &self.validation {
            let pred = self.net.forward_t(input, false)?;
            let b = input.dim(0)?;
            sum += self.loss(&pred, target)?.to_scalar::<f32>()? as f64 * b as f64;
            n += b;
        }
        Ok(sum / n.max(1) as f64)
    }
}

/// Trains a CARE model on pairs (low-SNR input, high-SNR target) of equal shape. Returns
/// the model with the weights of the best validation epoch.
pub fn train_care(
    pairs: &[(&Volume, &Volume)],
    options: &CareOptions,
    progress: &mut dyn Progress,
) -> Result<Model> {
    options.validate()?;
    let (model, _) = crate::nn::run_on_device(options.train.device, progress, |progress| {
        train_care_here(pairs, options, progress)
    })?;
    model.into_device(&candle_core::Device::Cpu)
}

/// [`train_care`] on [`crate::nn::device()`].
fn train_care_here(
    pairs: &[(&Volume, &Volume)],
    options: &CareOptions,
    progress: &mut dyn Progress,
) -> Result<Model> {
    if pairs.is_empty() {
        return invalid!("CARE needs at least one pair of low- and high-quality images");
    }
    let (mut inputs, mut targets) = (Vec::new(), Vec::new());
    for (i, (low, high)) in pairs.iter().enumerate() {
        if low.shape() != high.shape() {
            let ((lz, ly, lx), (hz, hy, hx)) = (low.shape(), high.shape());
            return invalid!(
                "pair {}: the low-quality image is {lx}×{ly}×{lz} pixels but the high-quality \
                 image is {hx}×{hy}×{hz}; they must show the same field of view",
                i + 1
            );
        }
        check_finite(&low.data, &format!("low-quality image {}", i + 1))?;
        check_finite(&high.data, &format!("high-quality image {}", i + 1))?;
        let affine = options
            .normalization
            .affine(low.data.as_slice().expect("standard layout"))?;
        inputs.push(low.data.mapv(|v| affine.apply(v)));
        targets.push(high.data.mapv(|v| affine.apply(v)));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(options.train.seed);
    let pz = if options.unet.dims == 3 {
        options.patch_z
    } else {
        1
    };
    let data = PatchSet::new(
        inputs,
        Some(targets),
        (pz, options.patch, options.patch),
        options.unet.dims,
        options.validation_fraction,
        &mut rng,
    )?;
    let network = options.network();
    let (vars, net) = new_unet(&network, options.train.seed)?;
    let device = crate::nn::device_name();
    progress.log(&format!(
        "CARE{}: {} training and {} validation patches, {} on {}",
        if options.probabilistic {
            " (probabilistic)"
        } else {
            ""
        },
        data.train.len(),
        data.validation.len(),
        describe_net(&network),
        device
    ));
    let mut validation = Vec::new();
    for chunk in data.validation.chunks(options.batch) {
        let (ins, tgs): (Vec<Array3<f32>>, Vec<Array3<f32>>) = chunk
            .iter()
            .map(|&at| {
                let (i, t) = data.get(at, 0);
                (i, t.expect("CARE has targets"))
            })
            .unzip();
        validation.push((data.tensor(&ins)?, data.tensor(&tgs)?));
    }
    let mut objective = CareObjective {
        net: &net,
        data,
        batch: options.batch,
        probabilistic: options.probabilistic,
        validation,
    };
    let report = train(&vars, &mut objective, &options.train, progress)?;
    let method = if options.probabilistic {
        METHOD_CARE_PROBABILISTIC
    } else {
        METHOD_CARE
    };
    let mut info = ModelInfo::new(method, &options.name, network, options.normalization);
    info.training = serde_json::to_value(options).expect("options serialise");
    info.history = report;
    let lows: Vec<&Volume> = pairs.iter().map(|p| p.0).collect();
    info.data = describe_data(&lows, "low/high-quality pairs of");
    Ok(Model { info, vars, net })
}
