//! Helpers of the kernels' tests: tensor differences, gradients of a weighted sum, and the
//! float64 definition of the convolution that the fast paths are compared against.

use candle_core::{backprop::GradStore, Device, Tensor};

/// The device of the kernels under test.
pub fn device() -> Device {
    Device::Cpu
}

/// The largest absolute difference between two tensors of one shape.
pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// The largest absolute value of a tensor.
pub fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// The gradients of Σ y·target with respect to everything `y` depends on: `target` is the
/// gradient fed into `y`'s backward pass.
pub fn weighted_grads(y: &Tensor, target: &Tensor) -> GradStore {
    (y * target).unwrap().sum_all().unwrap().backward().unwrap()
}

/// Naive same-padded 2D convolution (cross-correlation, as in every CNN library) in f64.
pub fn reference(
    x: &[f32],
    (n, c, h, w): (usize, usize, usize, usize),
    k: &[f32],
    co: usize,
    ks: usize,
) -> Vec<f64> {
    let p = (ks / 2) as isize;
    let mut out = vec![0f64; n * co * h * w];
    for b in 0..n {
        for o in 0..co {
            for y in 0..h {
                for xx in 0..w {
                    let mut s = 0f64;
                    for i in 0..c {
                        for dy in 0..ks {
                            for dx in 0..ks {
                                let (yy, xs) =
                                    (y as isize + dy as isize - p, xx as isize + dx as isize - p);
                                if yy >= 0 && xs >= 0 && (yy as usize) < h && (xs as usize) < w {
                                    s += x[((b * c + i) * h + yy as usize) * w + xs as usize]
                                        as f64
                                        * k[((o * c + i) * ks + dy) * ks + dx] as f64;
                                }
                            }
                        }
                    }
                    out[((b * co + o) * h + y) * w + xx] = s;
                }
            }
        }
    }
    out
}
