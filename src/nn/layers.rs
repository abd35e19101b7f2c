//! Layers shared by Fluorecon's networks, in candle's style: a struct built from a
//! [`VarBuilder`], a `forward` on a [`Tensor`].
//!
//! Tensors are channels-first: (batch, channel, y, x) for 2D networks and
//! (batch, channel, z, y, x) for 3D ones. candle has 2D convolution and pooling only; the 3D
//! versions here are built from them (a 3D convolution is the sum over the kernel's z taps of
//! 2D convolutions of shifted planes), so they have backward passes for free.

use super::cpu;
use candle_core::{Module, ModuleT, Result, Tensor, D};
use candle_nn::{BatchNorm, BatchNormConfig, Init, VarBuilder};

/// Spatial dimensionality of a network: 2 (y, x) or 3 (z, y, x).
pub fn check_dims(dims: usize) -> Result<()> {
    if dims == 2 || dims == 3 {
        Ok(())
    } else {
        candle_core::bail!("networks are 2D or 3D, not {dims}D")
    }
}

/// A "same"-padded convolution (odd kernel, stride 1, zero padding) in 2D or 3D with bias.
///
/// Parameters: `weight` (out, in, k, k) or (out, in, k, k, k); `bias` (out).
#[derive(Debug, Clone)]
pub struct Conv {
    weight: Tensor,
    bias: Tensor,
    dims: usize,
    kernel: usize,
}

impl Conv {
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        dims: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        check_dims(dims)?;
        if kernel % 2 == 0 {
            candle_core::bail!("convolution kernels must have an odd size, not {kernel}");
        }
        let mut shape = vec![out_channels, in_channels];
        shape.extend(std::iter::repeat_n(kernel, dims));
        let weight = vb.get_with_hints(shape, "weight", candle_nn::init::DEFAULT_KAIMING_NORMAL)?;
        let bound = 1.0 / ((in_channels * kernel.pow(dims as u32)) as f64).sqrt();
        let bias = vb.get_with_hints(
            out_channels,
            "bias",
            Init::Uniform {
                lo: -bound,
                up: bound,
            },
        )?;
        Ok(Conv {
            weight,
            bias,
            dims,
            kernel,
        })
    }
}

impl Conv {
    /// The kernel, (out, in, k, k) or (out, in, k, k, k).
    pub(super) fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The bias, (out).
    pub(super) fn bias(&self) -> &Tensor {
        &self.bias
    }

    /// The convolution followed by batch norm in inference mode, as one convolution with
    /// folded parameters: weight·s and (bias − mean)·s + β, s = γ / √(var + ε). The running
    /// statistics (variables of candle's `BatchNorm`, updated by training, never trained)
    /// enter as constants, so a network of constant weights records no graph.
    pub fn forward_folded(&self, x: &Tensor, bn: &BatchNorm) -> Result<Tensor> {
        let inv_std = (bn
            .running_var()
            .detach()
            .affine(1.0, bn.eps())?
            .sqrt()?
            .recip())?;
        let (scale, shift) = match bn.weight_and_bias() {
            Some((gamma, beta)) => ((&inv_std * gamma)?, beta.clone()),
            None => (inv_std.clone(), inv_std.zeros_like()?),
        };
        let mut shape = vec![self.weight.dim(0)?];
        shape.extend(std::iter::repeat_n(1, self.weight.rank() - 1));
        let weight = self.weight.broadcast_mul(&scale.reshape(shape)?)?;
        let bias = (((&self.bias - bn.running_mean().detach())? * &scale)? + shift)?;
        self.forward_with(x, &weight, &bias, true, false)
    }

    /// The convolution followed by a ReLU (fused into one op on the CPU); `train`: a backward
    /// pass will follow (the CPU path then keeps what it needs from the forward pass).
    pub fn forward_relu(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_with(x, &self.weight, &self.bias, true, train)
    }

    /// The convolution, when a backward pass will follow (see [`Conv::forward_relu`]).
    pub fn forward_train(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, &self.weight, &self.bias, false, true)
    }

    fn forward_with(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        relu: bool,
        train: bool,
    ) -> Result<Tensor> {
        let pad = self.kernel / 2;
        let out_channels = weight.dim(0)?;
        if self.dims == 2 {
            if fast_conv(x) {
                return cpu::conv::conv2d_same_bias_fast(x, weight, bias, relu, train);
            }
            let y = conv2d_same(x, weight, pad)?;
            let y = y.broadcast_add(&bias.reshape((1, out_channels, 1, 1))?)?;
            return if relu { y.relu() } else { Ok(y) };
        }
        // 3D: out[z] = Σ_dz conv2d(in[z + dz − pad], weight[.., dz, .., ..]).
        let (n, c, nz, ny, nx) = x.dims5()?;
        let planes = x
            .pad_with_zeros(2, pad, pad)?
            .permute((0, 2, 1, 3, 4))?
            .contiguous()?; // (n, z + 2 pad, c, y, x)
        let mut sum: Option<Tensor> = None;
        for dz in 0..self.kernel {
            let slab = planes
                .narrow(1, dz, nz)?
                .contiguous()?
                .reshape((n * nz, c, ny, nx))?;
            let w = weight.narrow(2, dz, 1)?.squeeze(2)?.contiguous()?;
            let y = conv2d_same(&slab, &w, pad)?;
            sum = Some(match sum {
                None => y,
                Some(s) => (s + y)?,
            });
        }
        let y = sum
            .expect("kernel ≥ 1")
            .reshape((n, nz, out_channels, ny, nx))?
            .permute((0, 2, 1, 3, 4))?;
        let y = y.broadcast_add(&bias.reshape((1, out_channels, 1, 1, 1))?)?;
        if relu {
            y.relu()
        } else {
            Ok(y)
        }
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(x, &self.weight, &self.bias, false, false)
    }
}

/// Whether convolutions of `x` go through [`cpu::conv`]: on the CPU unless switched off
/// (`FLUORECON_CANDLE_CONV`, see [`cpu::dispatch()`]).
fn fast_conv(x: &Tensor) -> bool {
    x.device().is_cpu() && cpu::dispatch().conv()
}

/// `x.conv2d(weight, pad, stride 1, dilation 1, groups 1)`: on the CPU through
/// [`cpu::conv`] (unless `FLUORECON_CANDLE_CONV`, see [`cpu::dispatch()`]), else candle's,
/// working around a bug of candle 0.9's CPU convolution: it takes a contiguous (n, c, h, w)
/// input for a channels-last one when c = h = w (its layout test cannot tell them apart) and
/// returns garbage. Such inputs are convolved transposed (conv(xᵀ, wᵀ)ᵀ = conv(x, w)), which gives
/// the convolution a strided view that it copies correctly. Only on the CPU: on a GPU the
/// convolution goes through [`super::gpu_ops`] (candle's CUDA convolution reads a strided
/// kernel as if it were contiguous).
pub fn conv2d_same(x: &Tensor, weight: &Tensor, pad: usize) -> Result<Tensor> {
    if fast_conv(x) {
        // Ours: im2col + gemm forward and backward (candle's backward is much slower).
        return cpu::conv::conv2d_same_fast(x, weight);
    }
    if !x.device().is_cpu() {
        return super::gpu_ops::conv2d_same(x, weight, pad);
    }
    let (_, c, h, w) = x.dims4()?;
    if c == h && h == w && x.is_contiguous() {
        let xt = x.transpose(2, 3)?;
        let wt = weight.transpose(2, 3)?;
        return xt.conv2d(&wt, pad, 1, 1, 1)?.transpose(2, 3);
    }
    x.conv2d(weight, pad, 1, 1, 1)
}

/// `convs` × (convolution, optional batch norm, ReLU): one level of a U-Net.
#[derive(Debug, Clone)]
pub struct ConvBlock {
    convs: Vec<(Conv, Option<BatchNorm>)>,
}

impl ConvBlock {
    /// Parameters under `conv.{i}` and, with batch norm, `bn.{i}`.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        dims: usize,
        convs: usize,
        batch_norm: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        let mut layers = Vec::with_capacity(convs);
        for i in 0..convs {
            let cin = if i == 0 { in_channels } else { out_channels };
            let conv = Conv::new(cin, out_channels, kernel, dims, vb.pp(format!("conv.{i}")))?;
            let bn = if batch_norm {
                Some(candle_nn::batch_norm(
                    out_channels,
                    BatchNormConfig::default(),
                    vb.pp(format!("bn.{i}")),
                )?)
            } else {
                None
            };
            layers.push((conv, bn));
        }
        Ok(ConvBlock { convs: layers })
    }

    /// The (convolution, batch norm) layers, in order.
    pub(super) fn layers(&self) -> &[(Conv, Option<BatchNorm>)] {
        &self.convs
    }
}

impl ModuleT for ConvBlock {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = x.clone();
        for (conv, bn) in &self.convs {
            x = match bn {
                // Inference: batch norm folded into the convolution (one pass less), ReLU
                // fused.
                Some(bn) if !train => conv.forward_folded(&x, bn)?,
                Some(bn) => {
                    let y = conv.forward_train(&x)?;
                    if cpu::batch_norm::supported(&y) {
                        cpu::batch_norm::forward_train(bn, &y, true)?
                    } else {
                        bn.forward_t(&y, true)?.relu()?
                    }
                }
                None => conv.forward_relu(&x, train)?,
            };
        }
        Ok(x)
    }
}

/// 2× max pooling over every spatial axis.
pub fn max_pool(x: &Tensor, dims: usize) -> Result<Tensor> {
    let pool2 = |x: &Tensor| {
        if cpu::pool::supported(x) {
            cpu::pool::max_pool2(x)
        } else if !x.device().is_cpu() {
            super::gpu_ops::max_pool2(x)
        } else {
            x.max_pool2d(2)
        }
    };
    if dims == 2 {
        return pool2(x);
    }
    let (n, c, nz, ny, nx) = x.dims5()?;
    let yx = pool2(&x.reshape((n, c * nz, ny, nx))?)?;
    yx.reshape((n, c, nz / 2, 2, ny / 2, nx / 2))?.max(3)
}

/// 2× nearest-neighbour upsampling over every spatial axis.
pub fn upsample(x: &Tensor, dims: usize) -> Result<Tensor> {
    let up2 = |x: &Tensor| {
        if cpu::pool::supported(x) {
            cpu::pool::upsample2(x)
        } else {
            let (_, _, ny, nx) = x.dims4()?;
            x.upsample_nearest2d(2 * ny, 2 * nx)
        }
    };
    if dims == 2 {
        return up2(x);
    }
    let (n, c, nz, ny, nx) = x.dims5()?;
    let yx = up2(&x.reshape((n, c * nz, ny, nx))?)?.reshape((n, c, nz, 1, 2 * ny, 2 * nx))?;
    yx.broadcast_as((n, c, nz, 2, 2 * ny, 2 * nx))?
        .reshape((n, c, 2 * nz, 2 * ny, 2 * nx))
}

/// Max-blur pooling of N2V2 (Höck et al. 2022, after Zhang 2019): a 2×2 max with stride 1,
/// then a [1 2 1]⊗[1 2 1] binomial blur with stride 2 along every spatial axis. Halves each
/// spatial size like [`max_pool`] but without aliasing (fewer checkerboard artefacts).
pub fn max_blur_pool(x: &Tensor, dims: usize) -> Result<Tensor> {
    let spatial: Vec<usize> = (2..2 + dims).collect();
    // Max over the window {p, p+1} along each axis; the last row repeats (replicate pad).
    let mut m = x.clone();
    for &axis in &spatial {
        let len = m.dim(axis)?;
        let next = m.narrow(axis, 1, len - 1)?.pad_with_same(axis, 0, 1)?;
        m = m.maximum(&next)?;
    }
    // Separable binomial blur with stride 2: out[i] = (m[2i−1] + 2 m[2i] + m[2i+1]) / 4,
    // replicate padding at the borders.
    for &axis in &spatial {
        let len = m.dim(axis)?;
        let padded = m.pad_with_same(axis, 1, 1)?; // index j ↦ m[j − 1]
        let half = len / 2;
        let pairs = |offset: usize| -> Result<Tensor> {
            // padded[offset + 2i] for i in 0..half
            let mut shape = padded.dims().to_vec();
            let part = padded.narrow(axis, offset, 2 * half)?;
            shape[axis] = half;
            shape.insert(axis + 1, 2);
            part.reshape(shape)?
                .narrow(axis + 1, 0, 1)?
                .squeeze(axis + 1)
        };
        let (a, b, c) = (pairs(0)?, pairs(1)?, pairs(2)?);
        m = ((a + (b * 2.0)?)? + c)?.affine(0.25, 0.0)?;
    }
    Ok(m)
}

/// Concatenates along the channel axis.
pub fn cat_channels(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    Tensor::cat(&[a, b], 1)
}

/// Softplus, ln(1 + eˣ), computed stably: max(x, 0) + ln(1 + e^−|x|).
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    let relu = x.relu()?;
    let tail = x.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
    relu + tail
}

/// Mean over every axis but the batch axis, then over the batch: a scalar.
pub fn mean_all(x: &Tensor) -> Result<Tensor> {
    x.flatten_from(1)?.mean(D::Minus1)?.mean(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::cpu::test_util::reference;
    use crate::nn::device;

    #[test]
    fn conv_matches_naive_reference_including_c_eq_h_eq_w() {
        // (n, c, h, w): the second one is the shape candle 0.9 gets wrong without the
        // workaround.
        for shape in [(2, 3, 7, 5), (1, 6, 6, 6), (2, 4, 4, 4)] {
            let (n, c, h, w) = shape;
            let co = 3;
            let x = Tensor::randn(0f32, 1.0, (n, c, h, w), &device()).unwrap();
            let k = Tensor::randn(0f32, 1.0, (co, c, 3, 3), &device()).unwrap();
            let got = conv2d_same(&x, &k, 1)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let xs = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let ks = k.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let want = reference(&xs, shape, &ks, co, 3);
            let err = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (*a as f64 - b).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-4, "{shape:?}: error {err}");
        }
    }

    #[test]
    fn conv3d_matches_planewise_sum() {
        // A 3D kernel that is non-zero only in its middle plane is a 2D convolution per plane.
        let vars = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, candle_core::DType::F32, &device());
        let conv = Conv::new(2, 3, 3, 3, vb).unwrap();
        let w2 = Tensor::randn(0f32, 1.0, (3, 2, 3, 3), &device()).unwrap();
        let zeros = w2.zeros_like().unwrap();
        let w3 = Tensor::stack(&[&zeros, &w2, &zeros], 2).unwrap();
        vars.data().lock().unwrap()["weight"].set(&w3).unwrap();
        let x = Tensor::randn(0f32, 1.0, (1, 2, 4, 6, 5), &device()).unwrap();
        let y = conv.forward(&x).unwrap();
        let bias = conv.bias.reshape((1, 3, 1, 1)).unwrap();
        for z in 0..4 {
            let plane = x.narrow(2, z, 1).unwrap().squeeze(2).unwrap();
            let want = conv2d_same(&plane, &w2, 1)
                .unwrap()
                .broadcast_add(&bias)
                .unwrap();
            let got = y.narrow(2, z, 1).unwrap().squeeze(2).unwrap();
            let d = cpu::test_util::max_diff(&got, &want);
            assert!(d < 1e-5, "plane {z}: {d}");
        }
    }

    #[test]
    fn folded_batch_norm_equals_conv_then_batch_norm() {
        for dims in [2, 3] {
            let vars = candle_nn::VarMap::new();
            let vb = VarBuilder::from_varmap(&vars, candle_core::DType::F32, &device());
            let block = ConvBlock::new(2, 3, 3, dims, 1, true, vb).unwrap();
            // Non-trivial running statistics and affine parameters.
            for (name, var) in vars.data().lock().unwrap().iter() {
                if name.contains("bn.") {
                    let v = Tensor::rand(0.5f32, 2.0, 3, &device()).unwrap();
                    var.set(&v).unwrap();
                }
            }
            let shape: Vec<usize> = if dims == 2 {
                vec![2, 2, 8, 6]
            } else {
                vec![1, 2, 4, 8, 6]
            };
            let x = Tensor::randn(0f32, 1.0, shape, &device()).unwrap();
            let folded = block.forward_t(&x, false).unwrap();
            let (conv, bn) = &block.convs[0];
            let plain = bn
                .as_ref()
                .unwrap()
                .forward_t(&conv.forward(&x).unwrap(), false)
                .unwrap()
                .relu()
                .unwrap();
            let d = (folded - plain).unwrap().abs().unwrap().max_all().unwrap();
            assert!(d.to_scalar::<f32>().unwrap() < 1e-4, "{dims}D");
        }
    }

    #[test]
    fn pooling_and_upsampling_shapes_and_values() {
        let x = Tensor::arange(0f32, 64.0, &device())
            .unwrap()
            .reshape((1, 1, 4, 4, 4))
            .unwrap();
        let p = max_pool(&x, 3).unwrap();
        assert_eq!(p.dims(), &[1, 1, 2, 2, 2]);
        // max of the 2×2×2 block at the origin: index (1,1,1) = 16 + 4 + 1
        assert_eq!(p.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0], 21.0);
        let u = upsample(&p, 3).unwrap();
        assert_eq!(u.dims(), &[1, 1, 4, 4, 4]);
        let x2 = Tensor::randn(0f32, 1.0, (2, 3, 8, 6), &device()).unwrap();
        let b = max_blur_pool(&x2, 2).unwrap();
        assert_eq!(b.dims(), &[2, 3, 4, 3]);
        // A constant image stays constant.
        let c = Tensor::ones((1, 1, 8, 8), candle_core::DType::F32, &device()).unwrap();
        let bc = max_blur_pool(&c, 2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(bc.iter().all(|v| (v - 1.0).abs() < 1e-6));
        let sp = softplus(&Tensor::new(&[-30f32, 0.0, 30.0], &device()).unwrap())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!((sp[1] - 2f32.ln()).abs() < 1e-6 && (sp[2] - 30.0).abs() < 1e-4 && sp[0] < 1e-12);
    }
}
