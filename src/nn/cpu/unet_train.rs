//! The 2D U-Net's training pass on the CPU as one candle op: forward and backward written
//! out over our own buffers, for the common configuration (2D, 3×3 kernels on an AVX-512
//! CPU, max pooling, with or without batch norm).
//!
//! Per-op custom ops (convolution, batch norm, pooling) already do the arithmetic at the
//! core's speed, but candle's backward pass around them costs a third of a training step:
//! every gradient of every op is accumulated into a fresh zero tensor by a single-threaded
//! add, and the glue between ops (concatenation, narrowing, the residual) runs
//! single-threaded. Here the whole network is one op of two arguments, the input batch and
//! all parameters as one flat vector (a concatenation of the variables, so candle hands each
//! variable its slice of the gradient); the op's forward pass keeps what the backward pass
//! needs (the padded input of every convolution, its output, batch-norm statistics) and
//! the backward pass computes every parameter's gradient in one go, each buffer written
//! once by all cores.
//!
//! The arithmetic is that of the per-op path (the same kernels and formulas), so the two
//! agree to rounding; `FLUORECON_UNFUSED_TRAINING` switches back to it (see
//! [`super::dispatch()`]).
//! The input gets no gradient: it is data.

use super::batch_norm::{self as bn_cpu, Stats};
use super::conv::Epilogue;
use super::conv_direct::{backward, convolve, Padded};
use super::{cpu_slice as slice, with_cpu};
use crate::parallel::SharedMut;
use candle_core::{bail, CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use candle_nn::BatchNorm;
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// Where one batch norm's parameters sit in the flat parameter vector.
#[derive(Debug, Clone, Copy)]
struct BnSpec {
    gamma: usize,
    beta: usize,
    eps: f64,
}

/// One convolution (3×3, same padding, bias), then batch norm if any, then ReLU; offsets
/// into the flat parameter vector.
#[derive(Debug, Clone)]
struct ConvSpec {
    cin: usize,
    cout: usize,
    weight: usize,
    bias: usize,
    bn: Option<BnSpec>,
}

/// The network as offsets into the flat parameter vector, in the order of
/// [`Network`]'s parameters: down blocks, middle, up blocks by level, head.
#[derive(Debug, Clone, Default)]
struct Plan {
    in_channels: usize,
    out_channels: usize,
    residual: bool,
    down: Vec<Vec<ConvSpec>>,
    middle: Vec<ConvSpec>,
    up: Vec<Vec<ConvSpec>>,
    head_weight: usize,
    head_bias: usize,
    len: usize,
}

/// One layer of a [`Network`]: a 3×3 same-padded convolution with bias, then the batch norm
/// if any, then ReLU.
pub(in crate::nn) struct Layer<'a> {
    /// (out, in, 3, 3).
    pub weight: &'a Tensor,
    /// (out).
    pub bias: &'a Tensor,
    /// With γ and β.
    pub batch_norm: Option<&'a BatchNorm>,
}

/// A 2D U-Net as the fused pass takes it (the parameters of
/// [`crate::nn::UNet`]): `down[l]` is level l's block before its 2×2 max pooling, `up[l]`
/// takes cat([upsample2(the output of the level below), down[l]'s output]) (the up blocks'
/// first layers' input channels say where the two meet), and the head is a 1×1
/// convolution, plus the input on the first channels when `residual`.
pub(in crate::nn) struct Network<'a> {
    pub in_channels: usize,
    pub out_channels: usize,
    pub residual: bool,
    pub down: Vec<Vec<Layer<'a>>>,
    pub middle: Vec<Layer<'a>>,
    pub up: Vec<Vec<Layer<'a>>>,
    /// Weight (out, in, 1, 1) and bias (out) of the head.
    pub head: (&'a Tensor, &'a Tensor),
}

/// Collects the plan, the parameters in its order and the batch norms (for their running
/// statistics) in block order.
struct Builder<'a> {
    plan: Plan,
    params: Vec<Tensor>,
    bns: Vec<&'a BatchNorm>,
}

impl<'a> Builder<'a> {
    fn push(&mut self, t: &Tensor) -> usize {
        let at = self.plan.len;
        self.plan.len += t.elem_count();
        self.params.push(t.clone());
        at
    }

    fn block(&mut self, layers: &[Layer<'a>]) -> Result<Vec<ConvSpec>> {
        let mut specs = Vec::new();
        for layer in layers {
            let (o, c) = (layer.weight.dim(0)?, layer.weight.dim(1)?);
            let weight = self.push(layer.weight);
            let bias = self.push(layer.bias);
            let bn = match layer.batch_norm {
                Some(bn) => {
                    let Some((gamma, beta)) = bn.weight_and_bias() else {
                        bail!("the fused training pass needs batch norm with γ and β");
                    };
                    self.bns.push(bn);
                    Some(BnSpec {
                        gamma: self.push(gamma),
                        beta: self.push(beta),
                        eps: bn.eps(),
                    })
                }
                None => None,
            };
            specs.push(ConvSpec {
                cin: c,
                cout: o,
                weight,
                bias,
                bn,
            });
        }
        Ok(specs)
    }
}

/// Whether [`forward`] takes `input`: (n, c, h, w) f32 on the CPU, data (it needs no
/// gradient).
pub(in crate::nn) fn takes(input: &Tensor) -> bool {
    input.device().is_cpu()
        && input.dtype() == candle_core::DType::F32
        && input.rank() == 4
        && !input.track_op()
}

/// The training pass of `net` on `input` as one op (see the module comment), with the
/// batch norms' running statistics updated as the per-op path does. Needs AVX-512F (see
/// [`super::Dispatch::fused_training`]) and an input that [`takes`] accepts.
pub(in crate::nn) fn forward(net: &Network, input: &Tensor) -> Result<Tensor> {
    let mut b = Builder {
        plan: Plan {
            in_channels: net.in_channels,
            out_channels: net.out_channels,
            residual: net.residual,
            ..Default::default()
        },
        params: Vec::new(),
        bns: Vec::new(),
    };
    for block in &net.down {
        let specs = b.block(block)?;
        b.plan.down.push(specs);
    }
    b.plan.middle = b.block(&net.middle)?;
    for block in &net.up {
        let specs = b.block(block)?;
        b.plan.up.push(specs);
    }
    b.plan.head_weight = b.push(net.head.0);
    b.plan.head_bias = b.push(net.head.1);
    let flat: Vec<Tensor> = b
        .params
        .iter()
        .map(|t| t.flatten_all())
        .collect::<Result<_>>()?;
    let flat = Tensor::cat(&flat, 0)?;
    let tape = Arc::new(Mutex::new(None));
    let op = UNetTrain {
        plan: b.plan,
        tape: tape.clone(),
    };
    let out = input.contiguous()?.apply_op2(&flat, op)?;
    let guard = tape.lock().unwrap_or_else(|e| e.into_inner());
    let Some(tape) = guard.as_ref() else {
        bail!("the fused training pass left no record");
    };
    for (bn, (stats, count)) in b.bns.iter().zip(tape.batch_stats()) {
        bn_cpu::update_running_statistics(bn, stats, count)?;
    }
    Ok(out)
}

/// What the backward pass needs of one layer.
struct LayerTape {
    /// The convolution's input, padded.
    xp: Padded,
    /// The convolution's output when batch norm follows.
    z: Option<Vec<f32>>,
    /// The layer's output (after the ReLU).
    y: Vec<f32>,
    stats: Option<Stats>,
}

/// What the backward pass needs of the whole network; blocks by level.
struct Tape {
    down: Vec<Vec<LayerTape>>,
    middle: Vec<LayerTape>,
    up: Vec<Vec<LayerTape>>,
}

impl Tape {
    fn blocks(&self) -> impl Iterator<Item = &Vec<LayerTape>> {
        self.down
            .iter()
            .chain(std::iter::once(&self.middle))
            .chain(&self.up)
    }

    /// The batch statistics of every batch norm and its values per channel, in block
    /// order.
    fn batch_stats(&self) -> impl Iterator<Item = (&Stats, usize)> {
        self.blocks().flatten().filter_map(|t| {
            let values = t.xp.n() * t.xp.h * t.xp.w;
            t.stats.as_ref().map(|s| (s, values))
        })
    }
}

/// The op: (input (n, in, h, w), flat parameters) → output (n, out, h, w).
struct UNetTrain {
    plan: Plan,
    tape: Arc<Mutex<Option<Tape>>>,
}

impl CustomOp2 for UNetTrain {
    fn name(&self) -> &'static str {
        "unet-2d-train"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, p) = (slice(s1, l1)?, slice(s2, l2)?);
        let (n, c, h, w) = l1.shape().dims4()?;
        let m = 1 << self.plan.down.len();
        if c != self.plan.in_channels || p.len() != self.plan.len || h % m != 0 || w % m != 0 {
            bail!(
                "fused U-Net pass: input {:?}, {} parameters, expected {} channels, {} \
                 parameters, sizes multiples of {m}",
                l1.shape(),
                p.len(),
                self.plan.in_channels,
                self.plan.len
            );
        }
        let (out, tape) = run_forward(&self.plan, p, x, (n, h, w));
        *self.tape.lock().unwrap_or_else(|e| e.into_inner()) = Some(tape);
        Ok((
            CpuStorage::F32(out),
            Shape::from((n, self.plan.out_channels, h, w)),
        ))
    }

    fn bwd(
        &self,
        x: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let Some(tape) = self.tape.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            bail!("the fused U-Net pass was differentiated twice");
        };
        let (n, _, h, w) = x.dims4()?;
        let grad = grad.contiguous()?;
        let g = with_cpu(params, |p| {
            with_cpu(&grad, |g| {
                Ok(run_backward(&self.plan, p, tape, g, (n, h, w)))
            })
        })?;
        Ok((
            None,
            Some(Tensor::from_vec(g, self.plan.len, params.device())?),
        ))
    }
}

/// One layer forward: convolution (+ bias), then batch norm and ReLU, or ReLU fused into
/// the convolution.
fn layer_forward(
    s: &ConvSpec,
    p: &[f32],
    xp: Padded,
    (n, h, w): (usize, usize, usize),
) -> LayerTape {
    let (o, c) = (s.cout, s.cin);
    let wt = &p[s.weight..][..o * c * 9];
    let bias = Some(&p[s.bias..][..o]);
    match s.bn {
        None => {
            let y = convolve(&xp, wt, o, c, false, Epilogue { bias, relu: true });
            LayerTape {
                xp,
                z: None,
                y,
                stats: None,
            }
        }
        Some(bn) => {
            let z = convolve(&xp, wt, o, c, false, Epilogue { bias, relu: false });
            let (gamma, beta) = (&p[bn.gamma..][..o], &p[bn.beta..][..o]);
            let (y, stats) = bn_cpu::train_forward(&z, gamma, beta, bn.eps, true, (n, o, h * w));
            LayerTape {
                xp,
                z: Some(z),
                y,
                stats: Some(stats),
            }
        }
    }
}

/// A block's layers forward from its input, padded.
fn block_forward(
    specs: &[ConvSpec],
    p: &[f32],
    xp: Padded,
    (n, h, w): (usize, usize, usize),
) -> Vec<LayerTape> {
    let mut tapes: Vec<LayerTape> = Vec::with_capacity(specs.len());
    let mut xp = Some(xp);
    for s in specs {
        let xp = match xp.take() {
            Some(xp) => xp,
            None => {
                let y = &tapes.last().expect("a layer before").y;
                Padded::new(y, n, s.cin, h, w)
            }
        };
        let t = layer_forward(s, p, xp, (n, h, w));
        tapes.push(t);
    }
    tapes
}

/// The block's output: its last layer's.
fn output(block: &[LayerTape]) -> &[f32] {
    &block.last().expect("a block has a layer").y
}

fn run_forward(
    plan: &Plan,
    p: &[f32],
    x: &[f32],
    (n, h, w): (usize, usize, usize),
) -> (Vec<f32>, Tape) {
    let depth = plan.down.len();
    let mut down: Vec<Vec<LayerTape>> = Vec::with_capacity(depth);
    let mut pooled: Option<Vec<f32>> = None;
    for (level, specs) in plan.down.iter().enumerate() {
        let (hl, wl) = (h >> level, w >> level);
        let input = pooled.as_deref().unwrap_or(x);
        let xp = Padded::new(input, n, specs[0].cin, hl, wl);
        let block = block_forward(specs, p, xp, (n, hl, wl));
        pooled = Some(super::pool::max_pool2_planes(output(&block), hl, wl));
        down.push(block);
    }
    let (hm, wm) = (h >> depth, w >> depth);
    let xp = Padded::new(
        pooled.as_deref().unwrap_or(x),
        n,
        plan.middle[0].cin,
        hm,
        wm,
    );
    let middle = block_forward(&plan.middle, p, xp, (n, hm, wm));
    drop(pooled);
    // Up, from the bottom level to the top; stored by level.
    let mut up: Vec<Vec<LayerTape>> = Vec::with_capacity(depth);
    for level in (0..depth).rev() {
        let (hl, wl) = (h >> level, w >> level);
        let xp = {
            let below = up.last().map_or(output(&middle), |b| output(b));
            let c = plan.up[level][0].cin;
            let low_c = c - plan.down[level].last().expect("a block has a layer").cout;
            Padded::upsample_cat(below, output(&down[level]), n, c, low_c, hl, wl)
        };
        up.push(block_forward(&plan.up[level], p, xp, (n, hl, wl)));
    }
    up.reverse();
    let top = up.first().map_or(output(&middle), |b| output(b));
    let out = head_forward(plan, p, top, x, n, h * w);
    (out, Tape { down, middle, up })
}

/// The 1×1 head (out = W·y + b per pixel) plus, when residual, the input on the first
/// channels.
fn head_forward(plan: &Plan, p: &[f32], y: &[f32], x: &[f32], n: usize, hw: usize) -> Vec<f32> {
    let oc = plan.out_channels;
    let c0 = y.len() / (n * hw).max(1);
    let wt = &p[plan.head_weight..][..oc * c0];
    let bias = &p[plan.head_bias..][..oc];
    let mut out = vec![0f32; n * oc * hw];
    out.par_chunks_mut(hw.max(1))
        .enumerate()
        .for_each(|(i, plane)| {
            let (b, o) = (i / oc, i % oc);
            plane.fill(bias[o]);
            for c in 0..c0 {
                let (k, src) = (wt[o * c0 + c], &y[(b * c0 + c) * hw..][..hw]);
                plane.iter_mut().zip(src).for_each(|(d, &v)| *d += k * v);
            }
            if plan.residual && o < plan.in_channels {
                let src = &x[(b * plan.in_channels + o) * hw..][..hw];
                plane.iter_mut().zip(src).for_each(|(d, &v)| *d += v);
            }
        });
    out
}

/// Σ a·b in f64 (16 f32 lanes per slice).
fn dot(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let rest: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().map(|&v| v as f64).sum::<f64>() + rest as f64
}

/// The head's backward pass: writes ∂W and ∂b into `grads`, returns ∂y (n, c0, hw).
fn head_backward(
    plan: &Plan,
    p: &[f32],
    y: &[f32],
    g: &[f32],
    n: usize,
    hw: usize,
    grads: &mut [f32],
) -> Vec<f32> {
    let oc = plan.out_channels;
    let c0 = y.len() / (n * hw).max(1);
    let wt = &p[plan.head_weight..][..oc * c0];
    let gw: Vec<f32> = (0..oc * c0)
        .into_par_iter()
        .map(|i| {
            let (o, c) = (i / c0, i % c0);
            (0..n)
                .map(|b| dot(&g[(b * oc + o) * hw..][..hw], &y[(b * c0 + c) * hw..][..hw]))
                .sum::<f64>() as f32
        })
        .collect();
    grads[plan.head_weight..][..oc * c0].copy_from_slice(&gw);
    for o in 0..oc {
        grads[plan.head_bias + o] = (0..n)
            .map(|b| bn_cpu::sum(&g[(b * oc + o) * hw..][..hw]))
            .sum::<f64>() as f32;
    }
    let mut dy = vec![0f32; n * c0 * hw];
    dy.par_chunks_mut(hw.max(1)).enumerate().for_each(|(i, d)| {
        let (b, c) = (i / c0, i % c0);
        for o in 0..oc {
            let (k, src) = (wt[o * c0 + c], &g[(b * oc + o) * hw..][..hw]);
            d.iter_mut().zip(src).for_each(|(d, &v)| *d += k * v);
        }
    });
    dy
}

/// One layer backward from ∂(output) `g`: writes the layer's parameter gradients into
/// `grads`; returns ∂(input) when `need_input`.
fn layer_backward(
    s: &ConvSpec,
    p: &[f32],
    t: LayerTape,
    g: &[f32],
    (n, h, w): (usize, usize, usize),
    need_input: bool,
    grads: &mut [f32],
) -> Option<Vec<f32>> {
    let (o, c) = (s.cout, s.cin);
    let dz;
    let (gc, mask): (&[f32], Option<&[f32]>) = match (s.bn, &t.z, &t.stats) {
        (Some(bn), Some(z), Some(stats)) => {
            let gamma = &p[bn.gamma..][..o];
            let (d, dgamma, dbeta) =
                bn_cpu::train_backward(z, g, &t.y, stats, gamma, true, (n, o, h * w));
            grads[bn.gamma..][..o].copy_from_slice(&dgamma);
            grads[bn.beta..][..o].copy_from_slice(&dbeta);
            dz = d;
            (&dz, None)
        }
        _ => (g, Some(&t.y)),
    };
    let wt = &p[s.weight..][..o * c * 9];
    let (dx, gw, sums) = backward(gc, mask, wt, &t.xp, o, need_input);
    grads[s.bias..][..o].copy_from_slice(&sums);
    grads[s.weight..][..o * c * 9].copy_from_slice(&gw);
    dx
}

fn block_backward(
    specs: &[ConvSpec],
    p: &[f32],
    tapes: Vec<LayerTape>,
    g: Vec<f32>,
    dims: (usize, usize, usize),
    need_input: bool,
    grads: &mut [f32],
) -> Option<Vec<f32>> {
    let mut g = g;
    for (i, (s, t)) in specs.iter().zip(tapes).enumerate().rev() {
        g = layer_backward(s, p, t, &g, dims, i > 0 || need_input, grads)?;
    }
    Some(g)
}

/// Channels `from..from + count` of `g` (n, c, hw) as their own (n, count, hw) buffer.
fn channels(g: &[f32], (n, c, hw): (usize, usize, usize), from: usize, count: usize) -> Vec<f32> {
    let mut out: Vec<f32> = Vec::with_capacity(n * count * hw);
    let ptr = SharedMut::new(out.as_mut_ptr());
    let ptr = &ptr;
    (0..n).into_par_iter().for_each(|b| {
        let src = &g[(b * c + from) * hw..][..count * hw];
        // SAFETY: image b's block of `out`, written by this task only.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), ptr.get().add(b * count * hw), count * hw)
        };
    });
    // SAFETY: every image's block was written above.
    unsafe { out.set_len(n * count * hw) };
    out
}

fn run_backward(
    plan: &Plan,
    p: &[f32],
    tape: Tape,
    g_out: &[f32],
    (n, h, w): (usize, usize, usize),
) -> Vec<f32> {
    let depth = plan.down.len();
    let mut grads = vec![0f32; plan.len];
    let Tape {
        down,
        middle,
        mut up,
    } = tape;
    let top = up.first().map_or(output(&middle), |b| output(b));
    let mut g = head_backward(plan, p, top, g_out, n, h * w, &mut grads);
    // Up blocks from the top: each gives its skip input's gradient and the gradient of the
    // block below it (its upsampled input).
    let mut skip_grads: Vec<Vec<f32>> = Vec::with_capacity(depth);
    for (level, block) in up.drain(..).enumerate() {
        let (hl, wl) = (h >> level, w >> level);
        let specs = &plan.up[level];
        let g_cat =
            block_backward(specs, p, block, g, (n, hl, wl), true, &mut grads).expect("asked for");
        let c = specs[0].cin;
        let skip_c = plan.down[level].last().expect("a block has a layer").cout;
        let low_c = c - skip_c;
        skip_grads.push(channels(&g_cat, (n, c, hl * wl), low_c, skip_c));
        g = super::pool::sum_pool_channels(&g_cat, (n, c, low_c, hl / 2, wl / 2));
    }
    let dims = (n, h >> depth, w >> depth);
    g = block_backward(&plan.middle, p, middle, g, dims, depth > 0, &mut grads).unwrap_or_default();
    // Down blocks from the bottom: a block's output went to the pooling and the skip.
    for (level, block) in down.into_iter().enumerate().rev() {
        let (hl, wl) = (h >> level, w >> level);
        let mut gy = skip_grads.pop().expect("one per level");
        super::pool::max_pool2_backward_add(output(&block), &g, &mut gy, hl, wl);
        let specs = &plan.down[level];
        g = block_backward(specs, p, block, gy, (n, hl, wl), level > 0, &mut grads)
            .unwrap_or_default();
    }
    grads
}
