//! Ops whose candle 0.9 versions give wrong gradients, for the networks on a GPU: the CUDA
//! convolution's kernel gradient (a strided kernel read as contiguous) and the 2×2 max
//! pooling's input gradient on any device (scaled by the fraction of maxima in the window
//! instead of divided by their number: ¼ of the gradient for a unique maximum). Forward values are
//! candle's own; the backward passes are computed here from candle ops on contiguous
//! operands. On the CPU the networks use `cpu::conv` and `cpu::pool` instead. Both ops are
//! checked against correct gradients on the CPU here and on a GPU in tests/gpu_nn.rs.

use candle_core::{
    CpuStorage, CudaStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor,
};

/// [`super::layers::conv2d_same`] on a GPU, working around a bug of candle 0.9's CUDA
/// convolution: given a strided kernel it makes a contiguous copy but multiplies with the
/// original, read as if it were contiguous (fixed upstream in candle 0.11, whose CUDA build also compiles large
/// quantised-matmul kernels we do not need). candle's backward pass computes the kernel
/// gradient as conv(xᵀ, gradᵀ) with a transposed, strided gradient as the kernel, so on a GPU
/// every kernel gradient of a batch > 1 was wrong. Here the forward convolution sees the
/// weights detached, and [`KernelGradient`], whose value is 0, carries their gradient,
/// computed with contiguous operands.
pub(super) fn conv2d_same(x: &Tensor, weight: &Tensor, pad: usize) -> Result<Tensor> {
    let y = x.conv2d(&weight.detach(), pad, 1, 1, 1)?;
    if !weight.track_op() {
        return Ok(y); // no gradient wanted (prediction with plain weights)
    }
    y + x.apply_op2(weight, KernelGradient { pad })?
}

/// A zero of the shape of `conv2d_same(x, weight)` whose backward pass gives `weight` the
/// kernel gradient Σ_{n,y,x} grad[n, o, y, x] · x_pad[n, i, y + dy, x + dx] (and `x` none:
/// the convolution beside it carries that one).
struct KernelGradient {
    pad: usize,
}

impl KernelGradient {
    fn shape(l1: &Layout, l2: &Layout) -> Result<Shape> {
        let (n, _, h, w) = l1.shape().dims4()?;
        let o = l2.shape().dims()[0];
        Ok((n, o, h, w).into())
    }
}

impl CustomOp2 for KernelGradient {
    fn name(&self) -> &'static str {
        "conv2d-kernel-gradient"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        l1: &Layout,
        _: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let shape = Self::shape(l1, l2)?;
        let zeros = vec![0f32; shape.elem_count()];
        Ok((CpuStorage::F32(zeros), shape))
    }

    fn cuda_fwd(
        &self,
        s1: &CudaStorage,
        l1: &Layout,
        _: &CudaStorage,
        l2: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        use candle_core::backend::{BackendDevice, BackendStorage};
        let shape = Self::shape(l1, l2)?;
        let zeros = s1.device().zeros_impl(&shape, DType::F32)?;
        Ok((zeros, shape))
    }

    fn bwd(
        &self,
        x: &Tensor,
        _weight: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let xt = x.detach().transpose(0, 1)?.contiguous()?; // (i, n, y, x)
        let gt = grad.detach().transpose(0, 1)?.contiguous()?; // (o, n, y, x)
        let g = xt.conv2d(&gt, self.pad, 1, 1, 1)?.transpose(0, 1)?; // (o, i, k, k)
        Ok((None, Some(g.contiguous()?)))
    }
}

/// 2×2 max pooling (stride 2) of a (n, c, h, w) tensor with the correct gradient: each output's
/// gradient goes to its window's maxima, divided by their number.
pub(super) fn max_pool2(x: &Tensor) -> Result<Tensor> {
    x.apply_op1(MaxPool2)
}

struct MaxPool2;

impl MaxPool2 {
    fn shape(l: &Layout) -> Result<Shape> {
        let (n, c, h, w) = l.shape().dims4()?;
        Ok((n, c, h / 2, w / 2).into())
    }
}

impl CustomOp1 for MaxPool2 {
    fn name(&self) -> &'static str {
        "max-pool-2x2"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        Ok((s.max_pool2d(l, (2, 2), (2, 2))?, Self::shape(l)?))
    }

    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> Result<(CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        Ok((s.max_pool2d(l, (2, 2), (2, 2))?, Self::shape(l)?))
    }

    fn bwd(&self, x: &Tensor, pooled: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (_, _, h, w) = x.dims4()?;
        let x = x.detach();
        let at_max = x
            .eq(&pooled.detach().upsample_nearest2d(h, w)?)?
            .to_dtype(DType::F32)?;
        // maxima per window (≥ 1), then each maximum's share of the output's gradient
        let count = (at_max.avg_pool2d(2)? * 4.0)?;
        let share = (grad.detach() / count)?.upsample_nearest2d(h, w)?;
        Ok(Some((share * at_max)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// The values of `y` and the gradients of Σ(y − target)² with respect to `wrt`.
    fn squared_error_gradients(y: Tensor, target: &Tensor, wrt: &[&Var]) -> Vec<Vec<f32>> {
        let loss = (&y - target).unwrap().sqr().unwrap().sum_all().unwrap();
        let g = loss.backward().unwrap();
        let mut out = vec![values(&y)];
        out.extend(wrt.iter().map(|v| values(g.get(v.as_tensor()).unwrap())));
        out
    }

    /// Largest |a − b| over the largest |b|.
    fn relative_error(a: &[f32], b: &[f32]) -> f32 {
        let err = a
            .iter()
            .zip(b)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        err / b.iter().map(|q| q.abs()).fold(f32::MIN_POSITIVE, f32::max)
    }

    /// The GPU path's split (a convolution with detached weights + [`KernelGradient`]) gives
    /// the value and both gradients of candle's convolution; run here on the CPU, whose
    /// candle convolution has no strided-kernel bug (tests/gpu_nn.rs compares on a GPU).
    #[test]
    fn kernel_gradient_op_gives_the_convolution_gradients() {
        for ((n, c, h, w), co, k) in [((3, 2, 7, 5), 4, 3), ((2, 3, 6, 9), 2, 5)] {
            let x = Var::randn(0f32, 1.0, (n, c, h, w), &Device::Cpu).unwrap();
            let wt = Var::randn(0f32, 1.0, (co, c, k, k), &Device::Cpu).unwrap();
            let target = Tensor::randn(0f32, 1.0, (n, co, h, w), &Device::Cpu).unwrap();
            let want = squared_error_gradients(
                x.conv2d(&wt, k / 2, 1, 1, 1).unwrap(),
                &target,
                &[&x, &wt],
            );
            let got =
                squared_error_gradients(conv2d_same(&x, &wt, k / 2).unwrap(), &target, &[&x, &wt]);
            for (what, (a, b)) in ["value", "∂x", "∂w"].iter().zip(got.iter().zip(&want)) {
                let err = relative_error(a, b);
                assert!(err <= 1e-5, "{what}: relative error {err}");
            }
        }
    }

    /// [`max_pool2`]'s value and gradient equal the CPU kernel's (first maximum of each
    /// window; random data has no ties), and a tie splits the gradient.
    #[test]
    fn max_pool_gives_the_gradient_to_the_maximum() {
        let x = Var::randn(0f32, 1.0, (2, 3, 6, 8), &Device::Cpu).unwrap();
        let target = Tensor::randn(0f32, 1.0, (2, 3, 3, 4), &Device::Cpu).unwrap();
        let want =
            squared_error_gradients(crate::nn::cpu::pool::max_pool2(&x).unwrap(), &target, &[&x]);
        let got = squared_error_gradients(max_pool2(&x).unwrap(), &target, &[&x]);
        assert_eq!(got[0], want[0]);
        let err = relative_error(&got[1], &want[1]);
        assert!(err < 1e-6, "gradient relative error {err}");
        // a window of four equal values: each gets a quarter
        let flat = Var::new(&[[[[1f32, 1.0], [1.0, 1.0]]]], &Device::Cpu).unwrap();
        let g = max_pool2(&flat)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert_eq!(values(g.get(flat.as_tensor()).unwrap()), vec![0.25; 4]);
    }
}
