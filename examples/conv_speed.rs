//! Speed of the CPU 3×3 convolution (forward, and forward + backward) on the layer shapes of
//! the U-Net training step of `nn_speed` (16 patches of 64², 32 base filters), in GFLOP/s
//! of CPU time: `cargo run --release --example conv_speed [threads] [reps]`.
//! `FLUORECON_GEMM_CONV=1` measures the im2col + gemm path instead of the direct one.

use candle_core::{Tensor, Var};
use fluorecon::nn::conv_cpu::conv2d_same_bias_fast;
use fluorecon::nn::device;

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let c = cpu_seconds();
            f();
            cpu_seconds() - c
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    if let Some(t) = std::env::args().nth(1) {
        std::env::set_var("RAYON_NUM_THREADS", &t);
    }
    // As in training (FLUORECON_MALLOC_DEFAULTS: glibc's defaults).
    let _heap = std::env::var_os("FLUORECON_MALLOC_DEFAULTS")
        .is_none()
        .then(fluorecon::nn::reuse_freed_memory);
    let reps: usize = std::env::args()
        .nth(2)
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let (mut tf, mut tb, mut flops) = (0.0, 0.0, 0.0);
    for (n, c, h, o) in [
        (16, 32, 64, 32),
        (16, 32, 32, 64),
        (16, 64, 32, 64),
        (16, 64, 16, 128),
        (16, 128, 16, 128),
        (16, 192, 32, 64),
        (16, 96, 64, 32),
    ] {
        let dev = device();
        let x = Var::randn(0f32, 1.0, (n, c, h, h), &dev).unwrap();
        let w = Var::randn(0f32, 0.1, (o, c, 3, 3), &dev).unwrap();
        let b = Var::randn(0f32, 0.1, o, &dev).unwrap();
        let target = Tensor::randn(0f32, 1.0, (n, o, h, h), &dev).unwrap();
        let fwd = best(reps, || {
            conv2d_same_bias_fast(&x, &w, &b, true, false).unwrap();
        });
        let both = best(reps, || {
            let y = conv2d_same_bias_fast(&x, &w, &b, true, true).unwrap();
            (y * &target)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
        });
        let f = 2.0 * (n * h * h * o * c * 9) as f64;
        println!(
            "{n}×{c}×{h}² → {o}: forward {:.1} ms ({:.0} GFLOP/s), backward {:.1} ms ({:.0} GFLOP/s)",
            fwd * 1e3,
            f / fwd * 1e-9,
            (both - fwd) * 1e3,
            2.0 * f / (both - fwd) * 1e-9
        );
        tf += fwd;
        tb += both - fwd;
        flops += f;
    }
    println!(
        "total: forward {:.1} ms ({:.0} GFLOP/s), backward {:.1} ms ({:.0} GFLOP/s)",
        tf * 1e3,
        flops / tf * 1e-9,
        tb * 1e3,
        2.0 * flops / tb * 1e-9
    );
}
