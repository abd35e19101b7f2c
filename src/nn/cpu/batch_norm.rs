//! Training-mode batch normalisation for f32 CPU tensors as one candle custom op with its
//! backward pass, optionally fused with the ReLU that follows it.
//!
//! candle_nn's `BatchNorm::forward_train` builds the statistics from a dozen tensor ops (a
//! transposed copy of the input, means, squares, broadcasts) and backpropagates through
//! each of them; here one pass per channel computes the mean and variance, one more writes
//! the output, and the backward pass is the closed form
//! ∂x = γ/σ · (∂y − mean(∂y) − x̂ · mean(∂y · x̂)), ∂γ = Σ ∂y · x̂, ∂β = Σ ∂y.
//! Channels run in parallel.
//!
//! Everything observable is candle's: the module is still a `candle_nn::BatchNorm` (same
//! parameter names, same inference path), the output is normalised with the biased batch
//! variance, and the running statistics are updated as candle does it:
//! `mean ← (1 − m)·mean + m·μ`, `var ← (1 − m)·var + m·N/(N − 1)·σ²` (N values per channel).
//! `FLUORECON_CANDLE_BN` switches back to candle's implementation (see [`super::dispatch()`]).

use super::dispatch;
use super::{cpu_slice as slice, with_cpu};
use crate::parallel::SharedMut;
use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, Var};
use candle_nn::BatchNorm;
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// Per-channel batch statistics of one forward pass.
#[derive(Debug, Clone, Default)]
pub(super) struct Stats {
    mean: Vec<f32>,
    /// Biased variance σ².
    var: Vec<f32>,
    /// 1 / √(σ² + ε).
    inv_std: Vec<f32>,
}

struct BatchNormTrain {
    eps: f64,
    relu: bool,
    /// Written by the forward pass, read by the caller (running statistics) and backward.
    stats: Arc<Mutex<Stats>>,
}

/// (n, c, inner) of a tensor of rank ≥ 2.
fn dims(shape: &Shape) -> Result<(usize, usize, usize)> {
    let d = shape.dims();
    if d.len() < 2 {
        bail!("batch norm needs (batch, channel, ...) tensors, got {shape:?}");
    }
    Ok((d[0], d[1], d[2..].iter().product()))
}

/// Sum of a slice in f64 (16 f32 lanes, added into f64 per slice).
pub(super) fn sum(v: &[f32]) -> f64 {
    let mut acc = [0f32; 16];
    let chunks = v.chunks_exact(16);
    let rest: f32 = chunks.remainder().iter().sum();
    for ch in chunks {
        for i in 0..16 {
            acc[i] += ch[i];
        }
    }
    acc.iter().map(|&a| a as f64).sum::<f64>() + rest as f64
}

/// Σ (v − m)², f64 result.
fn sum_sq_dev(v: &[f32], m: f32) -> f64 {
    let mut acc = [0f32; 16];
    let chunks = v.chunks_exact(16);
    let rest: f32 = chunks.remainder().iter().map(|&x| (x - m) * (x - m)).sum();
    for ch in chunks {
        for i in 0..16 {
            let d = ch[i] - m;
            acc[i] += d * d;
        }
    }
    acc.iter().map(|&a| a as f64).sum::<f64>() + rest as f64
}

/// Training-mode batch norm of `x` (n, c, inner) with γ, β, then ReLU if `relu`: the output
/// and the batch statistics. Channels in parallel.
pub(super) fn train_forward(
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f64,
    relu: bool,
    (n, c, inner): (usize, usize, usize),
) -> (Vec<f32>, Stats) {
    let count = (n * inner) as f64;
    let mut out: Vec<f32> = Vec::with_capacity(x.len());
    let ptr = SharedMut::new(out.as_mut_ptr());
    let ptr = &ptr;
    let per_channel: Vec<(f32, f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let block = |b: usize| &x[(b * c + ch) * inner..][..inner];
            let mean = ((0..n).map(|b| sum(block(b))).sum::<f64>() / count) as f32;
            let var = ((0..n).map(|b| sum_sq_dev(block(b), mean)).sum::<f64>() / count) as f32;
            let inv_std = (1.0 / (var as f64 + eps).sqrt()) as f32;
            let scale = inv_std * gamma[ch];
            let shift = beta[ch] - mean * scale;
            for b in 0..n {
                // SAFETY: block (b, ch) of the output, written by this channel only.
                let dst = unsafe {
                    std::slice::from_raw_parts_mut(ptr.get().add((b * c + ch) * inner), inner)
                };
                if relu {
                    for (d, &v) in dst.iter_mut().zip(block(b)) {
                        *d = (v * scale + shift).max(0.0);
                    }
                } else {
                    for (d, &v) in dst.iter_mut().zip(block(b)) {
                        *d = v * scale + shift;
                    }
                }
            }
            (mean, var, inv_std)
        })
        .collect();
    // SAFETY: the loop above wrote every block (b, ch) of the output.
    unsafe { out.set_len(n * c * inner) };
    let stats = Stats {
        mean: per_channel.iter().map(|s| s.0).collect(),
        var: per_channel.iter().map(|s| s.1).collect(),
        inv_std: per_channel.iter().map(|s| s.2).collect(),
    };
    (out, stats)
}

/// The backward pass of [`train_forward`]: from x, the output y, its gradient g and the
/// forward pass's statistics, (∂x, ∂γ, ∂β). With `relu`, g counts only where y > 0.
pub(super) fn train_backward(
    x: &[f32],
    g: &[f32],
    y: &[f32],
    stats: &Stats,
    gamma: &[f32],
    relu: bool,
    (n, c, inner): (usize, usize, usize),
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let count = (n * inner) as f32;
    let mut dx: Vec<f32> = Vec::with_capacity(x.len());
    let ptr = SharedMut::new(dx.as_mut_ptr());
    let ptr = &ptr;
    let sums: Vec<(f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let (mean, inv_std) = (stats.mean[ch], stats.inv_std[ch]);
            let at = |b: usize| (b * c + ch) * inner;
            let blocks = |b: usize| {
                (
                    &x[at(b)..][..inner],
                    &g[at(b)..][..inner],
                    &y[at(b)..][..inner],
                )
            };
            // Σ ∂y and Σ ∂y·x̂, ∂y masked where the ReLU was off.
            let (mut sg, mut sgx) = (0f64, 0f64);
            for b in 0..n {
                let (xs, gs, ys) = blocks(b);
                let (a, bb) = super::relu_mask::grad_sums(xs, gs, ys, mean, relu);
                sg += a;
                sgx += bb;
            }
            let sgx = sgx as f32 * inv_std; // Σ ∂y·x̂
            let sg = sg as f32;
            let k = gamma[ch] * inv_std;
            let (mg, mgx) = (sg / count, sgx / count);
            // ∂x = k·(∂y − mean(∂y) − x̂·mean(∂y·x̂)) = k·∂y − (k·mg − k·mean·s) − k·s·x,
            // s = inv_std·mgx.
            let s = inv_std * mgx;
            let affine = super::relu_mask::Affine {
                k,
                shift: k * mg - k * mean * s,
                kx: k * s,
            };
            for b in 0..n {
                let (xs, gs, ys) = blocks(b);
                // SAFETY: block (b, ch) of dx, written by this channel only.
                let dst = unsafe { std::slice::from_raw_parts_mut(ptr.get().add(at(b)), inner) };
                super::relu_mask::affine_grad(dst, xs, gs, ys, affine, relu);
            }
            (sgx, sg)
        })
        .collect();
    // SAFETY: the loop above wrote every block (b, ch) of dx.
    unsafe { dx.set_len(n * c * inner) };
    (
        dx,
        sums.iter().map(|s| s.0).collect(),
        sums.iter().map(|s| s.1).collect(),
    )
}

impl CustomOp3 for BatchNormTrain {
    fn name(&self) -> &'static str {
        "batch-norm-train"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1)?;
        let gamma = slice(s2, l2)?;
        let beta = slice(s3, l3)?;
        let dims = dims(l1.shape())?;
        let c = dims.1;
        if gamma.len() != c || beta.len() != c {
            bail!(
                "batch norm: {c} channels but γ, β of {}, {}",
                gamma.len(),
                beta.len()
            );
        }
        let (out, stats) = train_forward(x, gamma, beta, self.eps, self.relu, dims);
        *self.stats.lock().expect("batch norm statistics") = stats;
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let dims = dims(x.shape())?;
        let stats = self.stats.lock().expect("batch norm statistics").clone();
        let (dx, dgamma, dbeta) = with_cpu(x, |x| {
            with_cpu(&grad, |g| {
                with_cpu(res, |y| {
                    with_cpu(gamma, |gamma| {
                        Ok(train_backward(x, g, y, &stats, gamma, self.relu, dims))
                    })
                })
            })
        })?;
        let dev = x.device();
        let c = dims.1;
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dgamma, c, dev)?),
            Some(Tensor::from_vec(dbeta, c, dev)?),
        ))
    }
}

/// Updates `bn`'s running statistics with one training batch's, `count` values per channel,
/// by candle's formulas (its `set` writes into the shared variables).
pub(super) fn update_running_statistics(bn: &BatchNorm, s: &Stats, count: usize) -> Result<()> {
    let c = s.mean.len();
    let m = bn.momentum();
    let count = count as f64;
    let dev = bn.running_mean().device();
    let mean = Tensor::from_vec(s.mean.clone(), c, dev)?;
    let var = Tensor::from_vec(s.var.clone(), c, dev)?;
    let running_mean = Var::from_tensor(bn.running_mean())?;
    let running_var = Var::from_tensor(bn.running_var())?;
    let new_mean = ((running_mean.as_tensor() * (1.0 - m))? + (mean * m)?)?;
    running_mean.set(&new_mean)?;
    let new_var = ((running_var.as_tensor() * (1.0 - m))? + (var * (m * count / (count - 1.0)))?)?;
    running_var.set(&new_var)
}

/// Whether [`forward_train`] handles `x`: f32 on the CPU, rank ≥ 2, unless switched off
/// (`FLUORECON_CANDLE_BN`, see [`super::dispatch()`]).
pub fn supported(x: &Tensor) -> bool {
    x.device().is_cpu()
        && x.dtype() == candle_core::DType::F32
        && x.rank() >= 2
        && dispatch().batch_norm()
}

/// `bn.forward_t(x, true)` (then ReLU if `relu`), computed by the fused op above, with
/// candle's running-statistics update. `bn` must have been built with `remove_mean` (the
/// default); a `BatchNorm` without affine parameters uses γ = 1, β = 0.
pub fn forward_train(bn: &BatchNorm, x: &Tensor, relu: bool) -> Result<Tensor> {
    let c = bn.running_mean().dim(0)?;
    if x.rank() < 2 || x.dim(1)? != c {
        bail!(
            "batch-norm input doesn't have the expected number of features ({:?} <> {c})",
            x.shape()
        );
    }
    let (gamma, beta) = match bn.weight_and_bias() {
        Some((g, b)) => (g.clone(), b.clone()),
        None => (
            Tensor::ones(c, x.dtype(), x.device())?,
            Tensor::zeros(c, x.dtype(), x.device())?,
        ),
    };
    let stats = Arc::new(Mutex::new(Stats::default()));
    let op = BatchNormTrain {
        eps: bn.eps(),
        relu,
        stats: stats.clone(),
    };
    let y = x
        .contiguous()?
        .apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?;
    let s = stats.lock().expect("batch norm statistics").clone();
    update_running_statistics(bn, &s, x.elem_count() / c)?;
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::cpu::test_util::{device, max_abs, max_diff, weighted_grads};
    use candle_core::{DType, ModuleT};
    use candle_nn::{BatchNormConfig, VarBuilder, VarMap};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn seeded(shape: &[usize], seed: u64, scale: f32, offset: f32) -> Tensor {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|_| rng.gen_range(-1.0f32..1.0) * scale + offset)
            .collect();
        Tensor::from_vec(v, shape, &device()).unwrap()
    }

    /// max |a − b| / max(max |b|, 1e-3)
    fn rel(a: &Tensor, b: &Tensor) -> f32 {
        max_diff(a, b) / max_abs(b).max(1e-3)
    }

    fn new_bn(c: usize) -> (VarMap, BatchNorm) {
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, &device());
        let bn = candle_nn::batch_norm(c, BatchNormConfig::default(), vb).unwrap();
        // Non-trivial γ, β and running statistics.
        for (i, name) in ["running_mean", "running_var", "weight", "bias"]
            .iter()
            .enumerate()
        {
            let offset = if name.contains("var") || name.contains("weight") {
                1.5
            } else {
                0.0
            };
            let v = seeded(&[c], 100 + i as u64, 0.5, offset);
            vars.data().lock().unwrap()[*name].set(&v).unwrap();
        }
        (vars, bn)
    }

    fn get(vars: &VarMap, name: &str) -> Tensor {
        vars.data().lock().unwrap()[name]
            .as_tensor()
            .copy()
            .unwrap()
    }

    /// Forward, ∂x, ∂γ, ∂β and the running statistics against candle's BatchNorm (then
    /// ReLU when fused), on 4D and 5D inputs with a mean far from 0.
    #[test]
    fn matches_candle_batch_norm() {
        for (shape, relu) in [
            (vec![4, 3, 9, 7], false),
            (vec![16, 8, 16, 16], true),
            (vec![2, 5, 3, 6, 4], true),
            (vec![3, 2, 5, 5], false),
        ] {
            let c = shape[1];
            let x0 = seeded(&shape, 7, 2.0, 3.0);
            let target = seeded(&shape, 8, 1.0, 0.0);
            let mut results = Vec::new();
            for ours in [true, false] {
                let (vars, bn) = new_bn(c);
                let x = Var::from_tensor(&x0).unwrap();
                let y = if ours {
                    forward_train(&bn, &x, relu).unwrap()
                } else {
                    let y = bn.forward_t(&x, true).unwrap();
                    if relu {
                        y.relu().unwrap()
                    } else {
                        y
                    }
                };
                let grads = weighted_grads(&y, &target);
                let w = vars.data().lock().unwrap()["weight"].clone();
                let b = vars.data().lock().unwrap()["bias"].clone();
                results.push((
                    y.clone(),
                    grads.get(&x).unwrap().clone(),
                    grads.get(&w).unwrap().clone(),
                    grads.get(&b).unwrap().clone(),
                    get(&vars, "running_mean"),
                    get(&vars, "running_var"),
                ));
            }
            let (a, b) = (&results[0], &results[1]);
            let errs = [
                rel(&a.0, &b.0),
                rel(&a.1, &b.1),
                rel(&a.2, &b.2),
                rel(&a.3, &b.3),
                rel(&a.4, &b.4),
                rel(&a.5, &b.5),
            ];
            eprintln!("{shape:?} relu {relu}: (y, ∂x, ∂γ, ∂β, mean, var) {errs:?}");
            assert!(
                errs[..4].iter().all(|&e| e < 1e-4) && errs[4..].iter().all(|&e| e < 1e-6),
                "{shape:?} relu {relu}: relative errors (y, ∂x, ∂γ, ∂β, mean, var) {errs:?}"
            );
        }
    }

    /// The running statistics after one step, in f64 from the definition.
    #[test]
    fn running_statistics_from_definition() {
        let shape = [3, 2, 4, 5];
        let x = seeded(&shape, 3, 1.0, 2.0);
        let (vars, bn) = new_bn(2);
        let rm0 = get(&vars, "running_mean").to_vec1::<f32>().unwrap();
        let rv0 = get(&vars, "running_var").to_vec1::<f32>().unwrap();
        forward_train(&bn, &x, false).unwrap();
        let rm = get(&vars, "running_mean").to_vec1::<f32>().unwrap();
        let rv = get(&vars, "running_var").to_vec1::<f32>().unwrap();
        let v = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for ch in 0..2 {
            let vals: Vec<f64> = (0..3)
                .flat_map(|b| v[(b * 2 + ch) * 20..][..20].iter().map(|&t| t as f64))
                .collect();
            let n = vals.len() as f64;
            let mean = vals.iter().sum::<f64>() / n;
            let unbiased = vals.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / (n - 1.0);
            let want_m = 0.9 * rm0[ch] as f64 + 0.1 * mean;
            let want_v = 0.9 * rv0[ch] as f64 + 0.1 * unbiased;
            assert!((rm[ch] as f64 - want_m).abs() < 1e-5 * want_m.abs().max(1.0));
            assert!((rv[ch] as f64 - want_v).abs() < 1e-5 * want_v.abs().max(1.0));
        }
    }
}
