//! A faster same-padded 2D convolution for the CPU, as candle custom ops with a backward
//! pass. Per block of image rows (bounded memory, blocks in parallel) a horizontal-only
//! im2col (c·k rows, one per channel and kernel column, over the block's rows plus k − 1
//! halo rows) and k `gemm` matrix products, one per kernel row, each reading that matrix
//! shifted by whole image rows: k times less copying than a full im2col (c·k² rows), none
//! for 1×1 kernels. The input gradient is the same convolution with the flipped,
//! transposed kernel; the kernel gradient is k more products per block, accumulated.
//!
//! Layouts are channels-first (n, c, h, w), stride 1, dilation 1, odd kernels, zero padding
//! `pad` (k / 2 for "same").

use super::dispatch;
use super::{cpu_slice as slice, with_cpu};
use crate::parallel::SharedMut;
use candle_core::{bail, CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Storage, Tensor};
use gemm::{gemm, Parallelism};
use rayon::prelude::*;

/// Output pixels per im2col block, at most (whole rows, at least one).
const BLOCK: usize = 4096;
/// Floats per im2col block, at most (unless one row needs more): 1 MB, well within a core's
/// L2 cache on recent CPUs (measured: 10 % faster training steps than 4 MB on a 2 MB L2).
const BLOCK_FLOATS: usize = 1 << 18;

thread_local! {
    /// Each thread's im2col buffer, reused from block to block and call to call (no
    /// allocation, page faults or zero-filling per block).
    static COLS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's im2col buffer of `len` floats (stale contents; `im2col`
/// overwrites all of it). Not re-entrant: `f` must not call this again.
fn with_cols<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    COLS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() < len {
            c.resize(len, 0.0);
        }
        f(&mut c[..len])
    })
}

/// A vector of `len` floats every one of which `fill` writes (through the pointer) before
/// anything reads them: spares the zero-filling pass of `vec![0.0; len]`.
fn filled_by(len: usize, fill: impl FnOnce(*mut f32)) -> Vec<f32> {
    let mut v: Vec<f32> = Vec::with_capacity(len);
    fill(v.as_mut_ptr());
    // SAFETY: the capacity is len and `fill` initialised all len elements.
    unsafe { v.set_len(len) };
    v
}

/// Rows (c·k of them, ordered (c, dx)) over the input rows y0 − pad .. y1 + pad of one image
/// `x` (c, h, w), zero outside the image: `cols[(ci·k + dx, q)] = x[ci, y, x + dx − pad]`,
/// q = (y − y0 + pad)·w + x. Kernel row dy of output row y reads row y + dy − pad, i.e. the
/// matrix from column dy·w on.
#[allow(clippy::too_many_arguments)]
fn im2col(
    x: &[f32],
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    pad: usize,
    y0: usize,
    y1: usize,
    cols: &mut [f32],
) {
    let q = (y1 - y0 + 2 * pad) * w;
    // Rows first − pad .. y1 + pad, of which r_lo..r_hi lie in the image.
    let first = y0 as isize - pad as isize;
    let r_lo = first.max(0) as usize;
    let r_hi = (y1 + pad).min(h);
    for ci in 0..c {
        let plane = &x[ci * h * w..(ci + 1) * h * w];
        for dx in 0..k {
            let row = &mut cols[(ci * k + dx) * q..][..q];
            let shift = dx as isize - pad as isize;
            // Rows outside the image: zeros.
            let d_lo = ((r_lo as isize - first) as usize * w).min(q);
            let d_hi = if r_hi > r_lo {
                (r_hi as isize - first) as usize * w
            } else {
                d_lo
            };
            row[..d_lo].fill(0.0);
            row[d_hi..].fill(0.0);
            if d_hi == d_lo {
                continue;
            }
            // Rows inside: one shifted copy of the whole run of rows (row[i] =
            // plane[r_lo·w + i + shift]), zeros where that leaves the plane ...
            let dst = &mut row[d_lo..d_hi];
            let start = (r_lo * w) as isize + shift;
            let (s_lo, s_hi) = (
                start.max(0),
                (start + dst.len() as isize).min((h * w) as isize),
            );
            let (o_lo, o_hi) = ((s_lo - start) as usize, (s_hi - start) as usize);
            dst[..o_lo].fill(0.0);
            dst[o_hi..].fill(0.0);
            dst[o_lo..o_hi].copy_from_slice(&plane[s_lo as usize..s_hi as usize]);
            // ... then the columns that wrapped around from the neighbouring row: zeros.
            let (lo, hi) = (
                (-shift).clamp(0, w as isize) as usize,
                (w as isize - shift).clamp(0, w as isize) as usize,
            );
            for r in dst.chunks_exact_mut(w) {
                for v in &mut r[..lo] {
                    *v = 0.0;
                }
                for v in &mut r[hi..] {
                    *v = 0.0;
                }
            }
        }
    }
}

/// Blocks of output rows: (image, y0, y1), for an im2col matrix of `ckx` rows and `2·pad`
/// halo rows.
fn blocks(n: usize, h: usize, w: usize, ckx: usize, pad: usize) -> Vec<(usize, usize, usize)> {
    let pixels = BLOCK.min(BLOCK_FLOATS / ckx.max(1));
    let rows = (pixels / w.max(1)).saturating_sub(2 * pad).max(1);
    let mut v = Vec::new();
    for b in 0..n {
        let mut y = 0;
        while y < h {
            v.push((b, y, (y + rows).min(h)));
            y += rows;
        }
    }
    v
}

/// Runs `f(ptr, row_stride)` on the im2col matrix of [`im2col`] for rows y0..y1 of image
/// `img` (c, h, w): built in this thread's buffer, or for 1×1 kernels the image itself (its
/// rows are the matrix's, `h·w` apart).
#[allow(clippy::too_many_arguments)]
fn with_im2col<R>(
    img: &[f32],
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    pad: usize,
    y0: usize,
    y1: usize,
    f: impl FnOnce(*const f32, usize) -> R,
) -> R {
    if k == 1 {
        return f(img[y0 * w..].as_ptr(), h * w);
    }
    let q = (y1 - y0 + 2 * pad) * w;
    with_cols(c * k * q, |cols| {
        im2col(img, c, h, w, k, pad, y0, y1, cols);
        f(cols.as_ptr(), q)
    })
}

/// out = conv(x, weight), same padding.
struct Conv2dSame {
    pad: usize,
    saved: SavedInput,
}

/// The padded input of a forward pass through [`super::conv_direct`], kept for the backward
/// pass when `keep` (the weights are being trained): the copy is then made once, not twice.
/// The backward pass takes it, freeing it.
#[derive(Default)]
struct SavedInput {
    keep: bool,
    #[cfg(target_arch = "x86_64")]
    padded: std::sync::Mutex<Option<super::conv_direct::Padded>>,
}

impl SavedInput {
    fn new(keep: bool) -> Self {
        SavedInput {
            keep,
            ..Default::default()
        }
    }
}

/// What happens to each output block right after its matrix product, while it is in cache:
/// add a per-channel bias, then optionally ReLU.
#[derive(Clone, Copy)]
pub(super) struct Epilogue<'a> {
    pub bias: Option<&'a [f32]>,
    pub relu: bool,
}

/// The forward convolution of `x` (n, c, h, w) with `wt` (o, c, k, k), same padding.
fn conv_forward(
    x: &[f32],
    xs: &Shape,
    wt: &[f32],
    ws: &Shape,
    pad: usize,
    epi: Epilogue,
    saved: Option<&SavedInput>,
) -> Result<(CpuStorage, Shape)> {
    let (n, c, h, w) = xs.dims4()?;
    let (o, c2, k, k2) = ws.dims4()?;
    if c2 != c || k != k2 || k % 2 == 0 || 2 * pad + 1 != k {
        bail!("fast convolution: bad shapes {xs:?} {ws:?}");
    }
    if epi.bias.is_some_and(|b| b.len() != o) {
        bail!("fast convolution: bias of {o} values expected");
    }
    #[cfg(target_arch = "x86_64")]
    if dispatch().direct_conv(k) {
        let xp = super::conv_direct::Padded::new(x, n, c, h, w);
        let out = super::conv_direct::convolve(&xp, wt, o, c, false, epi);
        if let Some(s) = saved.filter(|s| s.keep) {
            *s.padded.lock().unwrap_or_else(|e| e.into_inner()) = Some(xp);
        }
        return Ok((CpuStorage::F32(out), Shape::from((n, o, h, w))));
    }
    // Weights as k matrices (o × c·k), one per kernel row: (dy, o, ci, dx).
    let ckx = c * k;
    let mut wr = vec![0f32; k * o * ckx];
    for oc in 0..o {
        for ci in 0..c {
            for dy in 0..k {
                for dx in 0..k {
                    wr[(dy * o + oc) * ckx + ci * k + dx] = wt[((oc * c + ci) * k + dy) * k + dx];
                }
            }
        }
    }
    let wr = &wr;
    let out = filled_by(n * o * h * w, |out| {
        let ptr = SharedMut::new(out);
        let ptr = &ptr;
        blocks(n, h, w, ckx, pad)
            .into_par_iter()
            .for_each(|(b, y0, y1)| {
                let p = (y1 - y0) * w;
                let img = &x[b * c * h * w..(b + 1) * c * h * w];
                with_im2col(img, c, h, w, k, pad, y0, y1, |cols, cols_rs| {
                    for dy in 0..k {
                        // SAFETY: each block writes the columns y0·w..y1·w of image b's (o, h·w)
                        // output, disjoint from every other block, all of them at dy = 0 (no
                        // read), adding to them after; the im2col matrix shifted by dy rows
                        // still ends inside it (it has p + 2·pad·w columns).
                        unsafe {
                            gemm(
                                o,
                                p,
                                ckx,
                                ptr.get().add(b * o * h * w + y0 * w),
                                1,
                                (h * w) as isize,
                                dy > 0,
                                wr.as_ptr().add(dy * o * ckx),
                                1,
                                ckx as isize,
                                cols.add(dy * w),
                                1,
                                cols_rs as isize,
                                if dy > 0 { 1.0 } else { 0.0 },
                                1.0,
                                false,
                                false,
                                false,
                                Parallelism::None,
                            );
                        }
                    }
                });
                if epi.bias.is_some() || epi.relu {
                    for oc in 0..o {
                        // SAFETY: the same block of the output as above.
                        let row = unsafe {
                            std::slice::from_raw_parts_mut(
                                ptr.get().add(b * o * h * w + oc * h * w + y0 * w),
                                p,
                            )
                        };
                        let bias = epi.bias.map_or(0.0, |b| b[oc]);
                        if epi.relu {
                            row.iter_mut().for_each(|v| *v = (*v + bias).max(0.0));
                        } else {
                            row.iter_mut().for_each(|v| *v += bias);
                        }
                    }
                }
            });
    });
    Ok((CpuStorage::F32(out), Shape::from((n, o, h, w))))
}

impl CustomOp2 for Conv2dSame {
    fn name(&self) -> &'static str {
        "conv2d-same-im2col"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        conv_forward(
            slice(s1, l1)?,
            l1.shape(),
            slice(s2, l2)?,
            l2.shape(),
            self.pad,
            Epilogue {
                bias: None,
                relu: false,
            },
            Some(&self.saved),
        )
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        #[cfg(target_arch = "x86_64")]
        if dispatch().direct_conv(weight.dim(2)?) {
            let (grad_x, grad_w, _) = direct_backward(x, weight, &grad, None, &self.saved)?;
            return Ok((grad_x, Some(grad_w)));
        }
        let (grad_x, grad_w) = conv_backward(x, weight, &grad, self.pad)?;
        Ok((grad_x, Some(grad_w)))
    }
}

/// ∂L/∂x (None when x needs no gradient: a network's input) and ∂L/∂weight from ∂L/∂out.
fn conv_backward(
    x: &Tensor,
    weight: &Tensor,
    grad: &Tensor,
    pad: usize,
) -> Result<(Option<Tensor>, Tensor)> {
    // ∂L/∂x = correlation of the gradient with the flipped kernel, channels swapped.
    let grad_x = if x.track_op() {
        let flipped = weight.flip(&[2, 3])?.transpose(0, 1)?.contiguous()?;
        Some(grad.apply_op2(
            &flipped,
            Conv2dSame {
                pad,
                saved: SavedInput::default(),
            },
        )?)
    } else {
        None
    };
    let (_, _, k, _) = weight.dims4()?;
    let grad_w = x.apply_op2_no_bwd(grad, &Conv2dKernelGrad { pad, kernel: k })?;
    Ok((grad_x, grad_w))
}

/// The backward pass through [`super::conv_direct`]: ∂L/∂x (None when x needs no gradient),
/// ∂L/∂weight and the per-channel sums of the (masked) gradient, the bias gradient, from
/// ∂L/∂out; with `mask` (the ReLU's output), the gradient is first zeroed where it is ≤ 0.
#[cfg(target_arch = "x86_64")]
fn direct_backward(
    x: &Tensor,
    weight: &Tensor,
    grad: &Tensor,
    mask: Option<&Tensor>,
    saved: &SavedInput,
) -> Result<(Option<Tensor>, Tensor, Tensor)> {
    use super::conv_direct::{backward, Padded};
    let (n, c, h, w) = x.dims4()?;
    let (o, _, k, _) = weight.dims4()?;
    let dev = x.device();
    let saved = saved
        .padded
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let xp = match saved {
        Some(xp) => xp,
        None => with_cpu(x, |xv| Ok(Padded::new(xv, n, c, h, w)))?,
    };
    let need_input = x.track_op();
    let (gx, gw, sums) = with_cpu(grad, |g| {
        with_cpu(&weight.contiguous()?, |wt| match mask {
            Some(m) => with_cpu(m, |m| Ok(backward(g, Some(m), wt, &xp, o, need_input))),
            None => Ok(backward(g, None, wt, &xp, o, need_input)),
        })
    })?;
    let grad_x = match gx {
        Some(gx) => Some(Tensor::from_vec(gx, (n, c, h, w), dev)?),
        None => None,
    };
    Ok((
        grad_x,
        Tensor::from_vec(gw, (o, c, k, k), dev)?,
        Tensor::from_vec(sums, o, dev)?,
    ))
}

/// out = conv(x, weight) + bias, then ReLU if `relu`: the bias and the ReLU applied to each
/// block while it is in cache instead of two more passes over the output.
struct Conv2dBias {
    pad: usize,
    relu: bool,
    saved: SavedInput,
}

impl CustomOp3 for Conv2dBias {
    fn name(&self) -> &'static str {
        "conv2d-same-bias-relu"
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
        conv_forward(
            slice(s1, l1)?,
            l1.shape(),
            slice(s2, l2)?,
            l2.shape(),
            self.pad,
            Epilogue {
                bias: Some(slice(s3, l3)?),
                relu: self.relu,
            },
            Some(&self.saved),
        )
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        #[cfg(target_arch = "x86_64")]
        if dispatch().direct_conv(weight.dim(2)?) {
            let mask = self.relu.then_some(res);
            let (grad_x, grad_w, grad_b) = direct_backward(x, weight, &grad, mask, &self.saved)?;
            return Ok((grad_x, Some(grad_w), Some(grad_b)));
        }
        let (grad, grad_b) = mask_and_bias_grad(&grad, res, self.relu)?;
        let (grad_x, grad_w) = conv_backward(x, weight, &grad, self.pad)?;
        Ok((grad_x, Some(grad_w), Some(grad_b)))
    }
}

/// The gradient with the ReLU's mask applied (where the output is 0 it is 0) when `relu`,
/// and its sum per channel (the bias gradient), in one pass.
fn mask_and_bias_grad(grad: &Tensor, res: &Tensor, relu: bool) -> Result<(Tensor, Tensor)> {
    let (n, o, h, w) = grad.dims4()?;
    let hw = h * w;
    let (gs, gl) = grad.storage_and_layout();
    let (rs, rl) = res.storage_and_layout();
    let (g, r) = match (&*gs, &*rs) {
        (Storage::Cpu(g), Storage::Cpu(r)) => (slice(g, gl)?, slice(r, rl)?),
        _ => bail!("fast convolution: not CPU tensors"),
    };
    let mut masked = if relu {
        vec![0f32; g.len()]
    } else {
        Vec::new()
    };
    let ptr = SharedMut::new(masked.as_mut_ptr());
    let ptr = &ptr;
    let sums: Vec<f32> = (0..o)
        .into_par_iter()
        .map(|oc| {
            let mut total = 0f64;
            for b in 0..n {
                let at = (b * o + oc) * hw;
                let src = &g[at..at + hw];
                if relu {
                    // SAFETY: block (b, oc) of `masked`, written by this channel only.
                    let dst = unsafe { std::slice::from_raw_parts_mut(ptr.get().add(at), hw) };
                    let out = &r[at..at + hw];
                    super::relu_mask::mask_row(dst, src, out);
                    total += super::batch_norm::sum(dst);
                } else {
                    total += super::batch_norm::sum(src);
                }
            }
            total as f32
        })
        .collect();
    if relu {
        // SAFETY: the loop above wrote every block (b, oc).
        unsafe { masked.set_len(g.len()) };
    }
    drop((gs, rs));
    let dev = grad.device();
    let grad_b = Tensor::from_vec(sums, o, dev)?;
    let masked = if relu {
        Tensor::from_vec(masked, (n, o, h, w), dev)?
    } else {
        grad.clone()
    };
    Ok((masked, grad_b))
}

/// ∂L/∂weight (o, c, k, k) from the input x (n, c, h, w) and ∂L/∂out (n, o, h, w):
/// Σ over images, blocks and kernel rows dy of grad_block (o × p) · cols_block,dyᵀ (p × c·k).
struct Conv2dKernelGrad {
    pad: usize,
    kernel: usize,
}

impl CustomOp2 for Conv2dKernelGrad {
    fn name(&self) -> &'static str {
        "conv2d-same-kernel-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1)?;
        let g = slice(s2, l2)?;
        let (n, c, h, w) = l1.shape().dims4()?;
        let (n2, o, h2, w2) = l2.shape().dims4()?;
        if (n, h, w) != (n2, h2, w2) {
            bail!("kernel gradient: shapes {:?} {:?}", l1.shape(), l2.shape());
        }
        let k = self.kernel;
        let ckx = c * k;
        // One sum per run (see `ordered_sum`) in (dy, o, ci, dx) order, blocks accumulated
        // into it by the products themselves, the sums added at the end.
        let blocks = blocks(n, h, w, ckx, self.pad);
        let dwr = super::ordered_sum(
            blocks.len(),
            super::GRADIENT_RUNS,
            k * o * ckx,
            || (),
            |dw: &mut [f32], _, i| {
                let (b, y0, y1) = blocks[i];
                let p = (y1 - y0) * w;
                let img = &x[b * c * h * w..(b + 1) * c * h * w];
                with_im2col(img, c, h, w, k, self.pad, y0, y1, |cols, cols_rs| {
                    for dy in 0..k {
                        // SAFETY: dst (o × ckx) += lhs, the (o × p) block of g (row stride
                        // h·w), times rhs, the transpose of the im2col matrix shifted by dy
                        // rows (p × ckx): all in bounds.
                        unsafe {
                            gemm(
                                o,
                                ckx,
                                p,
                                dw.as_mut_ptr().add(dy * o * ckx),
                                1,
                                ckx as isize,
                                true,
                                g.as_ptr().add(b * o * h * w + y0 * w),
                                1,
                                (h * w) as isize,
                                cols.add(dy * w),
                                cols_rs as isize,
                                1,
                                1.0,
                                1.0,
                                false,
                                false,
                                false,
                                Parallelism::None,
                            );
                        }
                    }
                });
            },
        );
        let mut dw = vec![0f32; o * c * k * k];
        for oc in 0..o {
            for ci in 0..c {
                for dy in 0..k {
                    for dx in 0..k {
                        dw[((oc * c + ci) * k + dy) * k + dx] =
                            dwr[(dy * o + oc) * ckx + ci * k + dx];
                    }
                }
            }
        }
        Ok((CpuStorage::F32(dw), Shape::from((o, c, k, k))))
    }
}

/// Same-padded 2D convolution (no bias) of `x` (n, c, h, w) with `weight` (o, c, k, k), k odd,
/// through the custom ops above; differentiable in both arguments.
pub fn conv2d_same_fast(x: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let k = weight.dim(2)?;
    x.contiguous()?.apply_op2(
        &weight.contiguous()?,
        Conv2dSame {
            pad: k / 2,
            saved: SavedInput::default(),
        },
    )
}

/// `conv2d_same_fast(x, weight) + bias` (bias of shape (o)), then ReLU if `relu`, as one
/// op; differentiable in all three arguments. `train`: a backward pass will follow, so the
/// op keeps its padded input for it (when the weight is a variable).
pub fn conv2d_same_bias_fast(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    relu: bool,
    train: bool,
) -> Result<Tensor> {
    let k = weight.dim(2)?;
    x.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        Conv2dBias {
            pad: k / 2,
            relu,
            saved: SavedInput::new(train && weight.track_op()),
        },
    )
}

#[cfg(test)]
mod tests;
