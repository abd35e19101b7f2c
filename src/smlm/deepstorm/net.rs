//! The Deep-STORM network (Nehme et al. 2018): an encoder–decoder of 3×3 convolution, batch
//! norm and ReLU blocks without skip connections, from a camera frame upsampled to the fine
//! grid to a density map on that grid.

use crate::nn::layers::{max_pool, upsample, Conv, ConvBlock};
use crate::nn::{device, seeded_init};
use crate::{invalid, Error, Result};
use candle_core::{DType, Module, ModuleT, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

/// Architecture, stored in `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeepStormConfig {
    /// Fine-grid pixels per camera pixel along x and y.
    pub upsampling: usize,
    /// Channels of the three encoder levels (the decoder mirrors them).
    pub filters: [usize; 3],
    /// Channels of the middle block.
    pub bottleneck: usize,
    /// Side of the (odd) convolution kernels, fine pixels.
    pub kernel_size: usize,
}

impl Default for DeepStormConfig {
    /// The paper's network.
    fn default() -> Self {
        DeepStormConfig {
            upsampling: 8,
            filters: [32, 64, 128],
            bottleneck: 512,
            kernel_size: 3,
        }
    }
}

impl DeepStormConfig {
    pub fn validate(&self) -> Result<()> {
        if !(1..=16).contains(&self.upsampling) {
            return invalid!("upsampling must be 1–16, not {}", self.upsampling);
        }
        if self.filters.contains(&0) || self.bottleneck == 0 {
            return invalid!("every level needs at least one filter");
        }
        if self.filters.iter().any(|&f| f > 1024) || self.bottleneck > 4096 {
            return invalid!(
                "at most 1024 filters per level and 4096 in the bottleneck, not {:?} and {}",
                self.filters,
                self.bottleneck
            );
        }
        if self.kernel_size % 2 == 0 || self.kernel_size > 15 {
            return invalid!(
                "kernel size must be odd and at most 15, not {}",
                self.kernel_size
            );
        }
        Ok(())
    }

    /// Number of weights and biases (batch-norm statistics included), an upper bound, for
    /// the size checks made before the network is built. Call after
    /// [`DeepStormConfig::validate`].
    pub fn parameter_count(&self) -> u128 {
        let k2 = (self.kernel_size as u128).pow(2);
        let conv = |cin: usize, cout: usize| k2 * cin as u128 * cout as u128 + 5 * cout as u128;
        let [a, b, c] = self.filters;
        let m = self.bottleneck;
        conv(1, a)
            + conv(a, b)
            + conv(b, c)
            + 2 * conv(c, m)
            + conv(b, a)
            + conv(c, b)
            + a as u128
            + 1
    }

    /// Camera pixels frames are padded to a multiple of, so that the fine grid is a multiple
    /// of 8 (three poolings).
    pub fn frame_multiple(&self) -> usize {
        8 / gcd(8, self.upsampling)
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The network. Parameters: `enc.{0,1,2}.*`, `middle.*`, `dec.{0,1,2}.*`, `head.*`.
#[derive(Debug, Clone)]
pub struct DeepStormNet {
    config: DeepStormConfig,
    enc: Vec<ConvBlock>,
    middle: ConvBlock,
    dec: Vec<ConvBlock>,
    head: Conv,
}

impl DeepStormNet {
    pub fn new(config: &DeepStormConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        let k = config.kernel_size;
        let block = |cin, cout, vb| ConvBlock::new(cin, cout, k, 2, 1, true, vb);
        let f = config.filters;
        let enc = vec![
            block(1, f[0], vb.pp("enc.0"))?,
            block(f[0], f[1], vb.pp("enc.1"))?,
            block(f[1], f[2], vb.pp("enc.2"))?,
        ];
        let middle = block(f[2], config.bottleneck, vb.pp("middle"))?;
        // dec.l brings the level below back to level l's width.
        let dec = vec![
            block(f[1], f[0], vb.pp("dec.0"))?,
            block(f[2], f[1], vb.pp("dec.1"))?,
            block(config.bottleneck, f[2], vb.pp("dec.2"))?,
        ];
        let head = Conv::new(f[0], 1, 1, 2, vb.pp("head"))?;
        Ok(DeepStormNet {
            config: config.clone(),
            enc,
            middle,
            dec,
            head,
        })
    }

    pub fn config(&self) -> &DeepStormConfig {
        &self.config
    }
}

impl ModuleT for DeepStormNet {
    /// Normalised frames (n, 1, h, w), h and w multiples of
    /// [`DeepStormConfig::frame_multiple`] → density maps (n, 1, h·up, w·up).
    fn forward_t(&self, frames: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let (_, c, h, w) = frames.dims4()?;
        let up = self.config.upsampling;
        let m = self.config.frame_multiple();
        if c != 1 || h % m != 0 || w % m != 0 {
            candle_core::bail!(
                "Deep-STORM takes (n, 1, h, w) frames with h and w multiples of {m}, got {:?}",
                frames.dims()
            );
        }
        let mut x = frames.upsample_nearest2d(h * up, w * up)?;
        for block in &self.enc {
            x = max_pool(&block.forward_t(&x, train)?, 2)?;
        }
        x = self.middle.forward_t(&x, train)?;
        for block in self.dec.iter().rev() {
            x = block.forward_t(&upsample(&x, 2)?, train)?;
        }
        self.head.forward(&x)
    }
}

/// A fresh, randomly initialised network and its variables.
pub fn new_net(config: &DeepStormConfig, seed: u64) -> Result<(VarMap, DeepStormNet)> {
    config.validate()?;
    crate::nn::model_file::check_parameters(config.parameter_count())?;
    let vars = VarMap::new();
    let vb = VarBuilder::from_varmap(&vars, DType::F32, &device());
    let net = DeepStormNet::new(config, vb).map_err(|e| Error::InvalidInput(e.to_string()))?;
    seeded_init(&vars, seed)?;
    Ok((vars, net))
}
