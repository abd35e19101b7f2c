//! 2×2 max pooling and 2× nearest-neighbour upsampling of f32 CPU tensors (n, c, h, w) as
//! candle custom ops with direct backward passes, planes in parallel.
//!
//! candle's own backward passes are built from other ops: the max pool's from an
//! upsampling, a comparison, an average pool, two products and another upsampling (seven
//! passes over the input), the upsampling's from a grouped convolution. Here each is one
//! pass.
//!
//! The max pool's backward pass is the true gradient: each output's gradient goes to its
//! window's first maximum (row by row, as in PyTorch). candle 0.9.2's own backward is not:
//! every maximum of a window gets the output's gradient times the window's fraction of
//! maxima, so a unique maximum gets a quarter ([[1, 2], [3, 4]] → [[0, 0], [0, 0.25]]
//! instead of [[0, 0], [0, 1]]) and a window of four equal values four times the gradient in
//! all. Models trained before this op had the true gradient (Deep-STORM's shipped
//! `models/deepstorm-2d-emccd-100nm` included) were trained with candle's; inference does
//! not depend on it, and `FLUORECON_CANDLE_POOL` (candle's ops throughout) reproduces that
//! training.

use super::{cpu_slice as slice, dispatch, with_cpu};
use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Index (0..4, row by row) of the first maximum of a 2×2 window.
#[inline]
fn argmax4(a: f32, b: f32, c: f32, d: f32) -> usize {
    let (mut i, mut m) = (0, a);
    if b > m {
        (i, m) = (1, b);
    }
    if c > m {
        (i, m) = (2, c);
    }
    if d > m {
        i = 3;
    }
    i
}

/// 2×2 max pooling with stride 2 of the (h, w) planes of `x`.
pub(super) fn max_pool2_planes(x: &[f32], h: usize, w: usize) -> Vec<f32> {
    let (ho, wo) = (h / 2, w / 2);
    let planes = x.len() / (h * w).max(1);
    let mut out = vec![0f32; planes * ho * wo];
    if ho * wo > 0 {
        out.par_chunks_mut(ho * wo)
            .zip(x.par_chunks(h * w))
            .for_each(|(o, p)| {
                for y in 0..ho {
                    let (r0, r1) = (&p[2 * y * w..][..w], &p[(2 * y + 1) * w..][..w]);
                    for (xo, v) in o[y * wo..][..wo].iter_mut().enumerate() {
                        *v = r0[2 * xo]
                            .max(r0[2 * xo + 1])
                            .max(r1[2 * xo].max(r1[2 * xo + 1]));
                    }
                }
            });
    }
    out
}

/// The backward pass of [`max_pool2_planes`]: adds each output's gradient `g` to `dx` at its
/// window's first maximum in `x`.
pub(super) fn max_pool2_backward_add(x: &[f32], g: &[f32], dx: &mut [f32], h: usize, w: usize) {
    let (ho, wo) = (h / 2, w / 2);
    if ho * wo == 0 {
        return;
    }
    dx.par_chunks_mut(h * w)
        .zip(x.par_chunks(h * w))
        .zip(g.par_chunks(ho * wo))
        .for_each(|((d, p), g)| {
            for y in 0..ho {
                for xo in 0..wo {
                    let at = [
                        2 * y * w + 2 * xo,
                        2 * y * w + 2 * xo + 1,
                        (2 * y + 1) * w + 2 * xo,
                        (2 * y + 1) * w + 2 * xo + 1,
                    ];
                    let v = at.map(|i| p[i]);
                    d[at[argmax4(v[0], v[1], v[2], v[3])]] += g[y * wo + xo];
                }
            }
        });
}

struct MaxPool2;

impl CustomOp1 for MaxPool2 {
    fn name(&self) -> &'static str {
        "max-pool-2x2"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l)?;
        let (n, c, h, w) = l.shape().dims4()?;
        let (ho, wo) = (h / 2, w / 2);
        let out = max_pool2_planes(x, h, w);
        Ok((CpuStorage::F32(out), Shape::from((n, c, ho, wo))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        let (n, c, h, w) = arg.dims4()?;
        let mut dx = vec![0f32; n * c * h * w];
        with_cpu(arg, |x| {
            with_cpu(&grad, |g| {
                max_pool2_backward_add(x, g, &mut dx, h, w);
                Ok(())
            })
        })?;
        Ok(Some(Tensor::from_vec(dx, (n, c, h, w), arg.device())?))
    }
}

struct Upsample2;

impl CustomOp1 for Upsample2 {
    fn name(&self) -> &'static str {
        "upsample-nearest-2x"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l)?;
        let (n, c, h, w) = l.shape().dims4()?;
        let mut out = vec![0f32; n * c * 4 * h * w];
        if h * w > 0 {
            out.par_chunks_mut(4 * h * w)
                .zip(x.par_chunks(h * w))
                .for_each(|(o, p)| upsample_plane(p, o, h, w));
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c, 2 * h, 2 * w))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        let (n, c, h, w) = arg.dims4()?;
        let mut dx = vec![0f32; n * c * h * w];
        with_cpu(&grad, |g| {
            if h * w > 0 {
                dx.par_chunks_mut(h * w)
                    .zip(g.par_chunks(4 * h * w))
                    .for_each(|(d, g)| sum_pool_plane(g, d, h, w));
            }
            Ok(())
        })?;
        Ok(Some(Tensor::from_vec(dx, (n, c, h, w), arg.device())?))
    }
}

/// Writes the 2× nearest-neighbour upsampling of plane `p` (h × w) into `o` (2h × 2w).
fn upsample_plane(p: &[f32], o: &mut [f32], h: usize, w: usize) {
    for y in 0..h {
        let src = &p[y * w..][..w];
        let (r0, r1) = o[2 * y * 2 * w..][..4 * w].split_at_mut(2 * w);
        for (pair, &v) in r0.chunks_exact_mut(2).zip(src) {
            pair[0] = v;
            pair[1] = v;
        }
        r1.copy_from_slice(r0);
    }
}

/// Sums each 2×2 block of `g` (2h × 2w) into `d` (h × w).
fn sum_pool_plane(g: &[f32], d: &mut [f32], h: usize, w: usize) {
    for y in 0..h {
        let (r0, r1) = (
            &g[2 * y * 2 * w..][..2 * w],
            &g[(2 * y + 1) * 2 * w..][..2 * w],
        );
        for (xo, v) in d[y * w..][..w].iter_mut().enumerate() {
            *v = (r0[2 * xo] + r0[2 * xo + 1]) + (r1[2 * xo] + r1[2 * xo + 1]);
        }
    }
}

/// cat([upsample2(low), skip], channels) of `low` (n, c1, h, w) and `skip` (n, c2, 2h, 2w)
/// in one pass.
pub(super) fn upsample2_cat_planes(
    low: &[f32],
    skip: &[f32],
    (n, c1, c2, h, w): (usize, usize, usize, usize, usize),
) -> Vec<f32> {
    let plane = 4 * h * w;
    let c = c1 + c2;
    let mut out = vec![0f32; n * c * plane];
    if plane > 0 {
        out.par_chunks_mut(plane).enumerate().for_each(|(i, o)| {
            let (b, ch) = (i / c, i % c);
            if ch < c1 {
                upsample_plane(&low[(b * c1 + ch) * h * w..][..h * w], o, h, w);
            } else {
                o.copy_from_slice(&skip[(b * c2 + ch - c1) * plane..][..plane]);
            }
        });
    }
    out
}

/// The gradient of `low` in [`upsample2_cat_planes`] from the output's gradient `g`
/// (n, c, 2h, 2w): its first c1 channels, each 2×2 block summed; (n, c1, h, w).
pub(super) fn sum_pool_channels(
    g: &[f32],
    (n, c, c1, h, w): (usize, usize, usize, usize, usize),
) -> Vec<f32> {
    let mut dlow = vec![0f32; n * c1 * h * w];
    if h * w > 0 {
        dlow.par_chunks_mut(h * w).enumerate().for_each(|(i, d)| {
            let (b, ch) = (i / c1, i % c1);
            sum_pool_plane(&g[(b * c + ch) * 4 * h * w..][..4 * h * w], d, h, w);
        });
    }
    dlow
}

/// cat([upsample2(low), skip], channels) in one pass: the U-Net's way up.
struct UpsampleCat;

impl candle_core::CustomOp2 for UpsampleCat {
    fn name(&self) -> &'static str {
        "upsample-nearest-2x-cat"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (low, skip) = (slice(s1, l1)?, slice(s2, l2)?);
        let (n, c1, h, w) = l1.shape().dims4()?;
        let (n2, c2, h2, w2) = l2.shape().dims4()?;
        if n2 != n || h2 != 2 * h || w2 != 2 * w {
            bail!("upsample-cat: shapes {:?} {:?}", l1.shape(), l2.shape());
        }
        let c = c1 + c2;
        let out = upsample2_cat_planes(low, skip, (n, c1, c2, h, w));
        Ok((CpuStorage::F32(out), Shape::from((n, c, 2 * h, 2 * w))))
    }

    fn bwd(
        &self,
        low: &Tensor,
        skip: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let (n, c1, h, w) = low.dims4()?;
        let c = grad.dim(1)?;
        let dlow = with_cpu(&grad, |g| Ok(sum_pool_channels(g, (n, c, c1, h, w))))?;
        let dlow = Tensor::from_vec(dlow, (n, c1, h, w), low.device())?;
        let dskip = grad.narrow(1, c1, skip.dim(1)?)?;
        Ok((Some(dlow), Some(dskip)))
    }
}

/// `cat([upsample2(low), skip], 1)` without the intermediate upsampled tensor.
pub fn upsample2_cat(low: &Tensor, skip: &Tensor) -> Result<Tensor> {
    low.contiguous()?
        .apply_op2(&skip.contiguous()?, UpsampleCat)
}

/// Whether the ops here handle `x`: a 4D f32 CPU tensor, unless switched off
/// (`FLUORECON_CANDLE_POOL`, see [`super::dispatch()`]).
pub fn supported(x: &Tensor) -> bool {
    x.device().is_cpu()
        && x.dtype() == candle_core::DType::F32
        && x.rank() == 4
        && dispatch().pool()
}

/// 2×2 max pooling with stride 2 (odd trailing rows and columns dropped, as candle does);
/// the backward pass gives each output's whole gradient to its window's first maximum.
pub fn max_pool2(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(MaxPool2)
}

/// 2× nearest-neighbour upsampling.
pub fn upsample2(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Upsample2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::cpu::test_util::{device, max_diff, weighted_grads};
    use candle_core::Var;

    /// Values of `g` as a flat vector.
    fn values(g: &Tensor) -> Vec<f32> {
        g.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// Forward against candle's; the max pool's gradient against a direct computation
    /// (each output's gradient to its window's first maximum; ties made likely by rounding
    /// and a ReLU), the upsampling's against candle's.
    #[test]
    fn match_candle_and_direct_gradients() {
        for (n, c, h, w) in [(2, 3, 8, 6), (1, 2, 7, 9), (3, 1, 2, 2), (2, 4, 10, 12)] {
            let raw = Tensor::randn(0f32, 2.0, (n, c, h, w), &device())
                .unwrap()
                .round()
                .unwrap()
                .relu()
                .unwrap();
            let x = Var::from_tensor(&raw).unwrap();
            let ours = max_pool2(&x).unwrap();
            assert_eq!(max_diff(&ours, &x.max_pool2d(2).unwrap()), 0.0);
            let target = Tensor::randn(0f32, 1.0, ours.shape(), &device()).unwrap();
            let got = values(weighted_grads(&ours, &target).get(&x).unwrap());
            let (xv, tv) = (values(&raw), values(&target));
            let (ho, wo) = (h / 2, w / 2);
            let mut want = vec![0f32; n * c * h * w];
            for p in 0..n * c {
                for y in 0..ho {
                    for xo in 0..wo {
                        let idx = [
                            (2 * y, 2 * xo),
                            (2 * y, 2 * xo + 1),
                            (2 * y + 1, 2 * xo),
                            (2 * y + 1, 2 * xo + 1),
                        ]
                        .map(|(yy, xx)| p * h * w + yy * w + xx);
                        let m = idx.iter().map(|&i| xv[i]).fold(f32::MIN, f32::max);
                        let first = idx.iter().find(|&&i| xv[i] == m).unwrap();
                        want[*first] = tv[p * ho * wo + y * wo + xo];
                    }
                }
            }
            assert_eq!(got, want, "max pool gradient {:?}", (n, c, h, w));

            let up = upsample2(&x).unwrap();
            let theirs = x.upsample_nearest2d(2 * h, 2 * w).unwrap();
            assert_eq!(max_diff(&up, &theirs), 0.0);
            let target = Tensor::randn(0f32, 1.0, up.shape(), &device()).unwrap();
            let g1 = weighted_grads(&up, &target);
            let g2 = weighted_grads(&theirs, &target);
            assert!(max_diff(g1.get(&x).unwrap(), g2.get(&x).unwrap()) < 1e-5);
        }
    }

    /// The max pool's gradient against central finite differences of f(x) = Σ pool(x)·t on
    /// inputs without ties (distinct values 0.5 apart, so a step of ±0.01 never changes
    /// which value is a window's maximum and f is linear within it). candle's own backward
    /// gives a unique maximum a quarter of this and fails here.
    #[test]
    fn max_pool_gradient_matches_finite_differences() {
        for (n, c, h, w) in [(1, 1, 4, 4), (2, 3, 6, 8), (1, 2, 7, 5)] {
            let len = n * c * h * w;
            // A permutation of 0..len (37 is coprime to every len here), centred.
            let xv: Vec<f32> = (0..len)
                .map(|i| ((i * 37) % len) as f32 * 0.5 - len as f32 / 4.0)
                .collect();
            let shape = (n, c, h, w);
            let x =
                Var::from_tensor(&Tensor::from_vec(xv.clone(), shape, &device()).unwrap()).unwrap();
            let y = max_pool2(&x).unwrap();
            let target = Tensor::randn(0f32, 1.0, y.shape(), &device()).unwrap();
            let tv = values(&target);
            let grad = values(weighted_grads(&y, &target).get(&x).unwrap());
            let f = |v: &[f32]| -> f64 {
                let t = Tensor::from_vec(v.to_vec(), shape, &device()).unwrap();
                values(&max_pool2(&t).unwrap())
                    .iter()
                    .zip(&tv)
                    .map(|(&a, &b)| a as f64 * b as f64)
                    .sum()
            };
            let eps = 0.01f32;
            let mut worst = 0f64;
            for i in 0..len {
                let (mut plus, mut minus) = (xv.clone(), xv.clone());
                plus[i] += eps;
                minus[i] -= eps;
                let fd = (f(&plus) - f(&minus)) / (plus[i] - minus[i]) as f64;
                worst = worst.max((fd - grad[i] as f64).abs());
            }
            assert!(worst < 1e-3, "{:?}: worst difference {worst}", shape);
            // The gradient is not trivially zero: one entry per window.
            assert_eq!(
                grad.iter().filter(|&&g| g != 0.0).count(),
                n * c * (h / 2) * (w / 2)
            );
        }
    }

    /// The fused upsample + concatenation against candle's ops, forward and gradients.
    #[test]
    fn upsample_cat_matches_candle() {
        let low = Var::randn(0f32, 1.0, (2, 3, 4, 5), &device()).unwrap();
        let skip = Var::randn(0f32, 1.0, (2, 2, 8, 10), &device()).unwrap();
        let ours = upsample2_cat(&low, &skip).unwrap();
        let theirs = Tensor::cat(
            &[&low.upsample_nearest2d(8, 10).unwrap(), skip.as_tensor()],
            1,
        )
        .unwrap();
        assert_eq!(max_diff(&ours, &theirs), 0.0);
        let target = Tensor::randn(0f32, 1.0, ours.shape(), &device()).unwrap();
        let g1 = weighted_grads(&ours, &target);
        let g2 = weighted_grads(&theirs, &target);
        assert!(max_diff(g1.get(&low).unwrap(), g2.get(&low).unwrap()) < 1e-5);
        assert_eq!(
            max_diff(g1.get(&skip).unwrap(), g2.get(&skip).unwrap()),
            0.0
        );
    }
}
