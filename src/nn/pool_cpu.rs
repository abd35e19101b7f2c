//! 2×2 max pooling and 2× nearest-neighbour upsampling of f32 CPU tensors (n, c, h, w) as
//! candle custom ops with direct backward passes, planes in parallel.
//!
//! candle's own backward passes are built from other ops: the max pool's from an
//! upsampling, a comparison, an average pool, two products and another upsampling (seven
//! passes over the input), the upsampling's from a grouped convolution. Here each is one
//! pass. The max pool's gradient goes to the first maximum of each 2×2 window (row by row),
//! as in PyTorch. (candle 0.9.2's max-pool gradient is also wrong: it multiplies by the
//! window's fraction of maxima, so a unique maximum gets a quarter of the gradient; e.g.
//! [[1, 2], [3, 4]] → [[0, 0], [0, 0.25]] instead of [[0, 0], [0, 1]].)

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Storage, Tensor};
use rayon::prelude::*;

fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let data = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => bail!("pooling needs contiguous tensors"),
    }
}

/// Runs `f` on the f32 values of a contiguous CPU tensor.
fn with_cpu<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => f(slice(s, layout)?),
        _ => bail!("pooling: not a CPU tensor"),
    }
}

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

struct MaxPool2;

impl CustomOp1 for MaxPool2 {
    fn name(&self) -> &'static str {
        "max-pool-2x2"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l)?;
        let (n, c, h, w) = l.shape().dims4()?;
        let (ho, wo) = (h / 2, w / 2);
        let mut out = vec![0f32; n * c * ho * wo];
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
        Ok((CpuStorage::F32(out), Shape::from((n, c, ho, wo))))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let grad = grad.contiguous()?;
        let (n, c, h, w) = arg.dims4()?;
        let (ho, wo) = (h / 2, w / 2);
        let mut dx = vec![0f32; n * c * h * w];
        with_cpu(arg, |x| {
            with_cpu(&grad, |g| {
                if ho * wo > 0 {
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
                                    let i = argmax4(p[at[0]], p[at[1]], p[at[2]], p[at[3]]);
                                    d[at[i]] = g[y * wo + xo];
                                }
                            }
                        });
                }
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
                .for_each(|(o, p)| {
                    for y in 0..h {
                        let src = &p[y * w..][..w];
                        let (r0, r1) = o[2 * y * 2 * w..][..4 * w].split_at_mut(2 * w);
                        for (pair, &v) in r0.chunks_exact_mut(2).zip(src) {
                            pair[0] = v;
                            pair[1] = v;
                        }
                        r1.copy_from_slice(r0);
                    }
                });
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
                    .for_each(|(d, g)| {
                        for y in 0..h {
                            let (r0, r1) = (
                                &g[2 * y * 2 * w..][..2 * w],
                                &g[(2 * y + 1) * 2 * w..][..2 * w],
                            );
                            for (xo, v) in d[y * w..][..w].iter_mut().enumerate() {
                                *v = (r0[2 * xo] + r0[2 * xo + 1]) + (r1[2 * xo] + r1[2 * xo + 1]);
                            }
                        }
                    });
            }
            Ok(())
        })?;
        Ok(Some(Tensor::from_vec(dx, (n, c, h, w), arg.device())?))
    }
}

/// Whether the ops here handle `x`: a 4D f32 CPU tensor, unless `FLUORECON_CANDLE_POOL` is
/// set.
pub fn supported(x: &Tensor) -> bool {
    x.device().is_cpu()
        && x.dtype() == candle_core::DType::F32
        && x.rank() == 4
        && std::env::var_os("FLUORECON_CANDLE_POOL").is_none()
}

/// 2×2 max pooling with stride 2 (odd trailing rows and columns dropped, as candle does).
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
    use crate::nn::device;
    use candle_core::Var;

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    /// Forward against candle's; the max pool's gradient against a direct computation
    /// (each output's gradient to its window's first maximum; ties made likely by rounding
    /// and a ReLU), the upsampling's against candle's.
    #[test]
    fn match_candle_and_direct_gradients() {
        for (n, c, h, w) in [(2, 3, 8, 6), (1, 2, 7, 9), (3, 1, 2, 2)] {
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
            let g = (&ours * &target)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let got = g
                .get(&x)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let xv = raw.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let tv = target.flatten_all().unwrap().to_vec1::<f32>().unwrap();
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
            let g1 = (&up * &target)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g2 = (&theirs * &target)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            assert!(max_diff(g1.get(&x).unwrap(), g2.get(&x).unwrap()) < 1e-5);
        }
    }
}
