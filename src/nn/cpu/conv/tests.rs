use super::*;
use crate::nn::cpu::test_util::{device, max_abs, max_diff, weighted_grads};
use candle_core::Var;

/// Forward and both gradients against candle's own convolution (its backward is
/// correct, only slow), on shapes with several row blocks and odd sizes.
#[test]
fn matches_candle_forward_and_gradients() {
    for (n, c, h, w, o, k) in [
        (2, 3, 9, 7, 4, 3),
        (1, 2, 70, 130, 3, 5),
        (3, 5, 6, 6, 2, 1),
        // Images narrower or lower than the kernel.
        (1, 3, 3, 1, 2, 5),
        (2, 2, 2, 3, 3, 5),
        (1, 2, 1, 8, 2, 3),
    ] {
        let x = Var::randn(0f32, 1.0, (n, c, h, w), &device()).unwrap();
        let wt = Var::randn(0f32, 1.0, (o, c, k, k), &device()).unwrap();
        let fast = conv2d_same_fast(&x, &wt).unwrap();
        let slow = x.conv2d(&wt, k / 2, 1, 1, 1).unwrap();
        assert!(
            max_diff(&fast, &slow) < 1e-4,
            "forward {:?}",
            (n, c, h, w, o, k)
        );
        let target = Tensor::randn(0f32, 1.0, fast.shape(), &device()).unwrap();
        let gf = weighted_grads(&fast, &target);
        let gs = weighted_grads(&slow, &target);
        let dx = max_diff(gf.get(&x).unwrap(), gs.get(&x).unwrap());
        let dw = max_diff(gf.get(&wt).unwrap(), gs.get(&wt).unwrap());
        assert!(dx < 1e-3 && dw < 1e-2, "gradients differ by {dx}, {dw}");
    }
}

/// The fused bias + ReLU op against candle's convolution, bias and ReLU: forward and
/// the gradients of input, weight and bias.
#[test]
fn fused_bias_relu_matches_candle() {
    for (n, c, h, w, o, k, relu) in [
        (2, 3, 9, 7, 4, 3, true),
        (1, 2, 70, 130, 3, 5, true),
        (3, 5, 6, 6, 2, 1, false),
        (2, 4, 12, 10, 6, 3, false),
    ] {
        let x = Var::randn(0f32, 1.0, (n, c, h, w), &device()).unwrap();
        let wt = Var::randn(0f32, 1.0, (o, c, k, k), &device()).unwrap();
        let b = Var::randn(0f32, 1.0, o, &device()).unwrap();
        let fast = conv2d_same_bias_fast(&x, &wt, &b, relu, true).unwrap();
        let slow = x
            .conv2d(&wt, k / 2, 1, 1, 1)
            .unwrap()
            .broadcast_add(&b.reshape((1, o, 1, 1)).unwrap())
            .unwrap();
        let slow = if relu { slow.relu().unwrap() } else { slow };
        let case = (n, c, h, w, o, k, relu);
        assert!(max_diff(&fast, &slow) < 1e-4, "forward {case:?}");
        let target = Tensor::randn(0f32, 1.0, fast.shape(), &device()).unwrap();
        let gf = weighted_grads(&fast, &target);
        let gs = weighted_grads(&slow, &target);
        let dx = max_diff(gf.get(&x).unwrap(), gs.get(&x).unwrap());
        let dw = max_diff(gf.get(&wt).unwrap(), gs.get(&wt).unwrap());
        let db = max_diff(gf.get(&b).unwrap(), gs.get(&b).unwrap());
        assert!(
            dx < 1e-3 && dw < 1e-2 && db < 1e-3,
            "{case:?}: gradients differ by {dx}, {dw}, {db}"
        );
    }
}

/// A network input (not a variable) gets no gradient, and the weights' gradient is
/// still right.
#[test]
fn constant_input_gets_no_gradient() {
    let x = Tensor::randn(0f32, 1.0, (2, 3, 8, 8), &device()).unwrap();
    let wt = Var::randn(0f32, 1.0, (4, 3, 3, 3), &device()).unwrap();
    let b = Var::randn(0f32, 1.0, 4, &device()).unwrap();
    let g = conv2d_same_bias_fast(&x, &wt, &b, true, true)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(g.get(&x).is_none());
    let gs = x
        .conv2d(&wt, 1, 1, 1, 1)
        .unwrap()
        .broadcast_add(&b.reshape((1, 4, 1, 1)).unwrap())
        .unwrap()
        .relu()
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(max_diff(g.get(&wt).unwrap(), gs.get(&wt).unwrap()) < 1e-3);
}

/// Many channels: several row blocks per image with their halo rows (k = 3 and 5),
/// forward and gradients relative to candle's.
#[test]
fn many_channels_several_blocks() {
    for (n, c, h, w, o, k) in [(2, 300, 70, 40, 3, 3), (1, 120, 50, 33, 2, 5)] {
        assert!(blocks(n, h, w, c * k, k / 2).len() >= 2 * n);
        let x = Var::randn(0f32, 1.0, (n, c, h, w), &device()).unwrap();
        let wt = Var::randn(0f32, 1.0, (o, c, k, k), &device()).unwrap();
        let fast = conv2d_same_fast(&x, &wt).unwrap();
        let slow = x.conv2d(&wt, k / 2, 1, 1, 1).unwrap();
        let rel = |a: &Tensor, b: &Tensor| max_diff(a, b) / max_abs(b);
        assert!(rel(&fast, &slow) < 1e-5, "forward {:?}", (n, c, h, w, o, k));
        let target = Tensor::randn(0f32, 1.0, fast.shape(), &device()).unwrap();
        let gf = weighted_grads(&fast, &target);
        let gs = weighted_grads(&slow, &target);
        let dx = rel(gf.get(&x).unwrap(), gs.get(&x).unwrap());
        let dw = rel(gf.get(&wt).unwrap(), gs.get(&wt).unwrap());
        assert!(
            dx < 1e-5 && dw < 1e-5,
            "relative gradient errors {dx}, {dw}"
        );
    }
}

/// The direct 3×3 path against im2col + gemm on the same data: forward and all three
/// gradients, on widths that are not multiples of 16 and channel counts that are not
/// multiples of the register tiles, with and without the padded input kept for training.
#[test]
fn direct_path_matches_gemm_path() {
    if !dispatch().avx512f() {
        eprintln!("no AVX-512: the direct path is not used here");
        return;
    }
    for (n, c, h, w, o, relu, train) in [
        (3, 5, 17, 33, 7, true, true),
        (2, 1, 9, 64, 32, true, false),
        (1, 37, 5, 3, 17, false, true),
        (2, 16, 1, 1, 6, true, true),
    ] {
        let x = Var::randn(0f32, 1.0, (n, c, h, w), &device()).unwrap();
        let wt = Var::randn(0f32, 1.0, (o, c, 3, 3), &device()).unwrap();
        let b = Var::randn(0f32, 1.0, o, &device()).unwrap();
        let target = Tensor::randn(0f32, 1.0, (n, o, h, w), &device()).unwrap();
        let run = |gemm: bool| {
            let (y, g) = crate::nn::cpu::with_switches(
                |s| s.gemm_conv = gemm,
                || {
                    let y = conv2d_same_bias_fast(&x, &wt, &b, relu, train).unwrap();
                    let g = weighted_grads(&y, &target);
                    (y, g)
                },
            );
            let grads = [&x, &wt, &b].map(|v| g.get(v).unwrap().clone());
            (y, grads)
        };
        let ((yd, gd), (yg, gg)) = (run(false), run(true));
        let case = (n, c, h, w, o, relu, train);
        assert!(max_diff(&yd, &yg) < 1e-4, "forward {case:?}");
        for (i, (a, b)) in gd.iter().zip(&gg).enumerate() {
            let scale = b
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                max_diff(a, b) <= 1e-5 * scale.max(1.0),
                "{case:?}: gradient {i} differs by {}",
                max_diff(a, b)
            );
        }
    }
}
