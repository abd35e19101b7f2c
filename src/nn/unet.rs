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
/// Most input or output channels of a U-Net (a `model.json` bound).
pub const MAX_CHANNELS: usize = 64;

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
        if self.in_channels > MAX_CHANNELS || self.out_channels > MAX_CHANNELS {
            candle_core::bail!(
                "a U-Net takes at most {MAX_CHANNELS} input and output channels, not {} and {}",
                self.in_channels,
                self.out_channels
            );
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
        if self.convs_per_level == 0 || self.convs_per_level > 8 {
            candle_core::bail!(
                "a U-Net needs 1–8 convolutions per level, not {}",
                self.convs_per_level
            );
        }
        if self.residual && self.out_channels < self.in_channels {
            candle_core::bail!("a residual U-Net needs at least as many output as input channels");
        }
        Ok(())
    }

    /// Number of weights and biases (batch-norm statistics included), an upper bound, for
    /// the size checks made before the network is built. Call after [`UNetConfig::validate`].
    pub fn parameter_count(&self) -> u128 {
        let conv = |cin: usize, cout: usize, k: usize| {
            (k as u128).pow(self.dims as u32) * cin as u128 * cout as u128 + 5 * cout as u128
        };
        let block = |cin: usize, cout: usize| {
            conv(cin, cout, self.kernel_size)
                + (self.convs_per_level as u128 - 1) * conv(cout, cout, self.kernel_size)
        };
        let mut n = 0u128;
        let mut cin = self.in_channels;
        for level in 0..self.depth {
            n += block(cin, self.filters(level));
            cin = self.filters(level);
            n += block(
                self.filters(level + 1) + self.filters(level),
                self.filters(level),
            );
        }
        n + block(cin, self.filters(self.depth)) + conv(self.filters(0), self.out_channels, 1)
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

    /// Whether the training pass on `input` runs as one fused CPU op
    /// ([`cpu::unet_train`]): a 2D U-Net without N2V2's blur pooling, an input the op takes,
    /// and the kernels that the dispatcher chooses for this kernel size fuse training.
    ///
    /// The choice sits here, not in [`super::train`]: the training loop is generic over an
    /// [`super::Objective`] (Deep-STORM trains another network through it), and the
    /// objectives of N2V and CARE run their U-Net's training pass as `forward_t(x, true)`.
    /// Here alone are the network, the batch and the training mode known together.
    #[cfg(target_arch = "x86_64")]
    fn fused_training(&self, input: &Tensor) -> bool {
        let c = &self.config;
        c.dims == 2
            && !c.n2v2
            && cpu::unet_train::takes(input)
            && cpu::dispatch().fused_training(c.kernel_size)
    }

    /// The network's parameters as [`cpu::unet_train`] takes them.
    #[cfg(target_arch = "x86_64")]
    fn fused_network<'a>(&'a self) -> cpu::unet_train::Network<'a> {
        let block = |b: &'a ConvBlock| -> Vec<cpu::unet_train::Layer<'a>> {
            b.layers()
                .iter()
                .map(|(conv, bn)| cpu::unet_train::Layer {
                    weight: conv.weight(),
                    bias: conv.bias(),
                    batch_norm: bn.as_ref(),
                })
                .collect()
        };
        cpu::unet_train::Network {
            in_channels: self.config.in_channels,
            out_channels: self.config.out_channels,
            residual: self.config.residual,
            down: self.down.iter().map(block).collect(),
            middle: block(&self.middle),
            up: self.up.iter().map(block).collect(),
            head: (self.head.weight(), self.head.bias()),
        }
    }
}

impl ModuleT for UNet {
    /// `train` selects batch statistics (training) or running statistics (inference) in the
    /// batch-norm layers.
    fn forward_t(&self, input: &Tensor, train: bool) -> Result<Tensor> {
        self.check_input(input)?;
        #[cfg(target_arch = "x86_64")]
        if train && self.fused_training(input) {
            return cpu::unet_train::forward(&self.fused_network(), input);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::cpu::test_util::{max_abs, max_diff};
    use crate::nn::device;
    use candle_core::{DType, Var};
    use candle_nn::{VarBuilder, VarMap};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Output, every parameter's gradient and the running statistics of the fused training
    /// pass ([`cpu::unet_train`]) against the op-by-op pass (the same kernels through candle's autograd), for a loss
    /// that weights every output value differently.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn fused_pass_matches_op_by_op_pass() {
        if !crate::nn::cpu::dispatch().direct_conv(3) {
            eprintln!("no AVX-512: the fused pass is not used here");
            return;
        }
        for (depth, bn, residual, cin, cout, (h, w)) in [
            (2, true, true, 1, 1, (16, 24)),
            (2, false, true, 1, 1, (16, 16)),
            (1, true, false, 2, 3, (12, 20)),
            (0, false, true, 1, 2, (8, 8)),
            (3, true, true, 1, 1, (16, 32)),
        ] {
            let config = UNetConfig {
                depth,
                base_filters: 8,
                kernel_size: 3,
                batch_norm: bn,
                residual,
                in_channels: cin,
                out_channels: cout,
                ..Default::default()
            };
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            let n = 3;
            let x: Vec<f32> = (0..n * cin * h * w)
                .map(|_| rng.gen_range(-1.0..2.0))
                .collect();
            let x = Tensor::from_vec(x, (n, cin, h, w), &device()).unwrap();
            let wts: Vec<f32> = (0..n * cout * h * w)
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            let wts = Tensor::from_vec(wts, (n, cout, h, w), &device()).unwrap();
            let mut runs = Vec::new();
            for unfused in [false, true] {
                // The op-by-op pass with the same kernels as the fused one.
                let run = crate::nn::cpu::with_switches(
                    |s| {
                        s.unfused_training = unfused;
                        s.candle_batch_norm = false;
                        s.candle_pool = false;
                    },
                    || {
                        let vars = VarMap::new();
                        let vb = VarBuilder::from_varmap(&vars, DType::F32, &device());
                        let net = UNet::new(&config, vb).unwrap();
                        crate::nn::seeded_init(&vars, 9).unwrap();
                        assert_eq!(net.fused_training(&x), !unfused);
                        let y = net.forward_t(&x, true).unwrap();
                        // A second step, so the running statistics move twice.
                        let y2 = net.forward_t(&x, true).unwrap();
                        let loss = ((y * &wts).unwrap().sum_all().unwrap()
                            + (y2.sqr().unwrap().sum_all().unwrap() * 0.5).unwrap())
                        .unwrap();
                        let grads = loss.backward().unwrap();
                        let mut named: Vec<(String, Var)> =
                            vars.data().lock().unwrap().clone().into_iter().collect();
                        named.sort_by(|a, b| a.0.cmp(&b.0));
                        let values: Vec<(String, Option<Tensor>, Tensor)> = named
                            .iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    grads.get(v.as_tensor()).cloned(),
                                    v.as_tensor().copy().unwrap(),
                                )
                            })
                            .collect();
                        (net.forward_t(&x, true).unwrap(), values)
                    },
                );
                runs.push(run);
            }
            let label = format!("depth {depth} bn {bn} residual {residual} {cin}→{cout} {h}×{w}");
            let (fused, op_by_op) = (&runs[0], &runs[1]);
            let rel = |a: &Tensor, b: &Tensor| max_diff(a, b) / max_abs(b).max(1e-3);
            assert!(rel(&fused.0, &op_by_op.0) < 1e-5, "{label}: output");
            // A convolution's bias before batch norm has a gradient of 0 but for rounding:
            // such differences count against the largest gradient of all.
            let scale = op_by_op
                .1
                .iter()
                .filter_map(|(_, g, _)| g.as_ref().map(max_abs))
                .fold(0f32, f32::max);
            for ((name, ga, va), (_, gb, vb)) in fused.1.iter().zip(&op_by_op.1) {
                match (ga, gb) {
                    (Some(a), Some(b)) => {
                        let e = max_diff(a, b) / max_abs(b).max(1e-3 * scale);
                        assert!(e < 1e-4, "{label}: ∂{name} differs by {e}");
                    }
                    (None, None) => {
                        // Running statistics: not trained, updated by both passes alike.
                        let e = rel(va, vb);
                        assert!(e < 1e-5, "{label}: {name} differs by {e}");
                    }
                    _ => panic!("{label}: {name} has a gradient in one pass only"),
                }
            }
        }
    }
}
