//! A configurable 2D/3D U-Net (Ronneberger et al. 2015) as used by CARE (Weigert et al.
//! 2018) and Noise2Void (Krull et al. 2019), with the N2V2 variant (Höck et al. 2022):
//! max-blur pooling and no skip connection at the top level.
//!
//! ```text
//!  input ─ down.0 ───────────────────────────────(skip, not in N2V2)──── up.0 ─ head ─(+input)─ output
//!            └ pool ─ down.1 ──────────────────────(skip)──── up.1 ┘ upsample
//!                       └ pool ─ …  middle  … upsample ┘
//! ```
//!
//! Level `l` has `base_filters · 2^l` channels; every block is `convs_per_level` ×
//! (convolution, optional batch norm, ReLU); the head is a 1×1 convolution with a linear
//! output. Spatial sizes must be multiples of 2^depth.

use super::cpu;
use super::layers::{cat_channels, max_blur_pool, max_pool, upsample, ConvBlock};
use super::layers::{check_dims, Conv};
use candle_core::{Module, ModuleT, Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

/// Architecture of a [`UNet`], stored in `model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UNetConfig {
    /// 2 (y, x) or 3 (z, y, x).
    pub dims: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    /// Number of poolings (0 = no pooling: a plain stack of convolutions).
    pub depth: usize,
    /// Channels of the top level; they double at every level down.
    pub base_filters: usize,
    /// Side of the (odd) convolution kernels, pixels.
    pub kernel_size: usize,
    pub convs_per_level: usize,
    pub batch_norm: bool,
    /// Adds the input to the first `in_channels` output channels (the network learns the
    /// correction).
    pub residual: bool,
    /// N2V2: max-blur pooling and no skip connection at the top level.
    pub n2v2: bool,
}

impl Default for UNetConfig {
    /// CARE's 2D default (depth 2, 32 filters, kernel 5, no batch norm, residual).
    fn default() -> Self {
        UNetConfig {
            dims: 2,
            in_channels: 1,
            out_channels: 1,
            depth: 2,
            base_filters: 32,
            kernel_size: 5,
            convs_per_level: 2,
            batch_norm: false,
            residual: true,
            n2v2: false,
        }
    }
}

impl UNetConfig {
    /// Checks the numbers; the message names the bad one.
    pub fn validate(&self) -> Result<()> {
        check_dims(self.dims)?;
        if self.in_channels == 0 || self.out_channels == 0 {
            candle_core::bail!("a U-Net needs at least one input and one output channel");
        }
        if self.depth > 6 {
            candle_core::bail!("U-Net depth {} is too large (at most 6)", self.depth);
        }
        if self.base_filters == 0 || self.base_filters > 1024 {
            candle_core::bail!("base filters must be 1–1024, not {}", self.base_filters);
        }
        if self.kernel_size % 2 == 0 || self.kernel_size > 15 {
            candle_core::bail!(
                "kernel size must be odd and at most 15, not {}",
                self.kernel_size
            );
        }
        if self.convs_per_level == 0 {
            candle_core::bail!("a U-Net needs at least one convolution per level");
        }
        if self.residual && self.out_channels < self.in_channels {
            candle_core::bail!("a residual U-Net needs at least as many output as input channels");
        }
        Ok(())
    }

    /// Spatial sizes must be multiples of this: 2^depth.
    pub fn size_multiple(&self) -> usize {
        1 << self.depth
    }

    /// Radius of the receptive field in pixels, an upper bound: an output pixel depends on
    /// no input pixel farther than this along any axis. Each convolution reaches
    /// `kernel/2 · 2^level`; a pixel at the bottom stands for a block of 2^depth input pixels
    /// whose far edge is up to 2^depth − 1 away, on the way down and again on the way up;
    /// N2V2's max-blur pooling reaches 2 · 2^level more per level.
    pub fn receptive_radius(&self) -> usize {
        let half = self.kernel_size / 2;
        let mut r = 2 * ((1 << self.depth) - 1);
        for level in 0..self.depth {
            let scale = 1 << level;
            r += 2 * self.convs_per_level * half * scale;
            if self.n2v2 {
                r += 2 * scale;
            }
        }
        r + self.convs_per_level * half * (1 << self.depth)
    }

    /// Number of channels at `level`.
    fn filters(&self, level: usize) -> usize {
        self.base_filters << level
    }
}

/// The U-Net. Parameter names: `down.{l}.conv.{i}.weight`, `down.{l}.bn.{i}.*`,
/// `middle.*`, `up.{l}.*`, `head.weight`, `head.bias`.
#[derive(Debug, Clone)]
pub struct UNet {
    config: UNetConfig,
    down: Vec<ConvBlock>,
    middle: ConvBlock,
    up: Vec<ConvBlock>,
    head: Conv,
}

impl UNet {
    pub fn new(config: &UNetConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        let c = config;
        let block = |cin, cout, vb| {
            ConvBlock::new(
                cin,
                cout,
                c.kernel_size,
                c.dims,
                c.convs_per_level,
                c.batch_norm,
                vb,
            )
        };
        let mut down = Vec::with_capacity(c.depth);
        let mut cin = c.in_channels;
        for level in 0..c.depth {
            down.push(block(
                cin,
                c.filters(level),
                vb.pp(format!("down.{level}")),
            )?);
            cin = c.filters(level);
        }
        let middle = block(cin, c.filters(c.depth), vb.pp("middle"))?;
        let mut up = Vec::with_capacity(c.depth);
        for level in 0..c.depth {
            let skip = if c.n2v2 && level == 0 {
                0
            } else {
                c.filters(level)
            };
            let from_below = c.filters(level + 1);
            up.push(block(
                from_below + skip,
                c.filters(level),
                vb.pp(format!("up.{level}")),
            )?);
        }
        let head = Conv::new(c.filters(0), c.out_channels, 1, c.dims, vb.pp("head"))?;
        Ok(UNet {
            config: config.clone(),
            down,
            middle,
            up,
            head,
        })
    }

    pub fn config(&self) -> &UNetConfig {
        &self.config
    }

    /// The down blocks by level, the middle block, the up blocks by level and the head.
    pub(super) fn parts(&self) -> (&[ConvBlock], &ConvBlock, &[ConvBlock], &Conv) {
        (&self.down, &self.middle, &self.up, &self.head)
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        let c = &self.config;
        let dims = x.dims();
        if dims.len() != c.dims + 2 || dims[1] != c.in_channels {
            candle_core::bail!(
                "the {}D U-Net with {} input channel(s) got a tensor of shape {:?}",
                c.dims,
                c.in_channels,
                dims
            );
        }
        let m = c.size_multiple();
        if dims[2..].iter().any(|&s| s % m != 0 || s == 0) {
            candle_core::bail!(
                "U-Net input sizes must be multiples of {m}, got {:?}",
                &dims[2..]
            );
        }
        Ok(())
    }
}

impl ModuleT for UNet {
    /// `train` selects batch statistics (training) or running statistics (inference) in the
    /// batch-norm layers.
    fn forward_t(&self, input: &Tensor, train: bool) -> Result<Tensor> {
        self.check_input(input)?;
        #[cfg(target_arch = "x86_64")]
        if train && cpu::unet_train::supported(self, input) {
            return cpu::unet_train::forward(self, input);
        }
        let c = &self.config;
        let pool = |x: &Tensor| {
            if c.n2v2 {
                max_blur_pool(x, c.dims)
            } else {
                max_pool(x, c.dims)
            }
        };
        let mut skips = Vec::with_capacity(c.depth);
        let mut x = input.clone();
        for block in &self.down {
            x = block.forward_t(&x, train)?;
            skips.push(x.clone());
            x = pool(&x)?;
        }
        x = self.middle.forward_t(&x, train)?;
        for (level, block) in self.up.iter().enumerate().rev() {
            let skip = !(c.n2v2 && level == 0);
            x = if skip && c.dims == 2 && cpu::pool::supported(&x) {
                cpu::pool::upsample2_cat(&x, &skips[level])?
            } else if skip {
                cat_channels(&upsample(&x, c.dims)?, &skips[level])?
            } else {
                upsample(&x, c.dims)?
            };
            x = block.forward_t(&x, train)?;
        }
        let mut out = self.head.forward(&x)?;
        if c.residual {
            let k = c.in_channels;
            let corrected = (out.narrow(1, 0, k)? + input)?;
            out = if c.out_channels > k {
                let rest = out.narrow(1, k, c.out_channels - k)?;
                Tensor::cat(&[&corrected, &rest], 1)?
            } else {
                corrected
            };
        }
        Ok(out)
    }
}
