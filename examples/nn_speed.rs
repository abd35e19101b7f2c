//! Speed of the U-Net on the CPU: forward pass of one 512×512 image and one training step
//! (forward + backward + Adam) of 16 patches of 64², depth-2 U-Net with 32 filters of 3×3
//! (the benchmark of issue 3).
//! `cargo run --release --example nn_speed [threads] [repetitions] [bn|nobn|both] [train]`
//! (default: all threads, 3 repetitions, with and without batch norm; `train`: the training
//! step only).
//!
//! Prints, per measurement, the median wall-clock time over the repetitions (after one
//! warm-up) and the median CPU time of the process (all threads) in brackets: on a shared
//! machine the CPU time is the steadier measure of the work done.

use candle_core::{ModuleT, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use fluorecon::nn::{device, new_unet, UNetConfig};
use std::time::Instant;

/// CPU seconds used by this process so far (user + system, all threads).
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 * 1e-6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// Median wall and CPU seconds of `reps` runs of `f` after one warm-up.
fn time(reps: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let (t, c) = (Instant::now(), cpu_seconds());
        f();
        wall.push(t.elapsed().as_secs_f64());
        cpu.push(cpu_seconds() - c);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    (median(&mut wall), median(&mut cpu))
}

fn main() {
    if let Some(t) = std::env::args().nth(1) {
        std::env::set_var("RAYON_NUM_THREADS", &t);
    }
    let reps: usize = std::env::args()
        .nth(2)
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    println!("threads: {}", candle_core::utils::get_num_threads());
    // As in training and tiled prediction (FLUORECON_MALLOC_DEFAULTS: glibc's defaults).
    let _heap = std::env::var_os("FLUORECON_MALLOC_DEFAULTS")
        .is_none()
        .then(fluorecon::nn::reuse_freed_memory);
    let which: Vec<bool> = match std::env::args().nth(3).as_deref() {
        Some("bn") => vec![true],
        Some("nobn") => vec![false],
        _ => vec![false, true],
    };
    // A fourth argument `train` skips the 512² forward pass (for profiling the step).
    let train_only = std::env::args().nth(4).as_deref() == Some("train");
    for batch_norm in which {
        let cfg = UNetConfig {
            depth: 2,
            base_filters: 32,
            kernel_size: 3,
            batch_norm,
            residual: false,
            ..Default::default()
        };
        let (vars, net) = new_unet(&cfg, 1).unwrap();
        let (mut params, mut buffers) = (0usize, 0usize);
        for (name, var) in vars.data().lock().unwrap().iter() {
            if name.contains("running") {
                buffers += var.elem_count();
            } else {
                params += var.elem_count();
            }
        }
        println!("batch norm {batch_norm}: parameters {params} (+ {buffers} running statistics)");
        let x = Tensor::randn(0f32, 1.0, (1, 1, 512, 512), &device()).unwrap();
        let fwd = if train_only {
            (f64::NAN, f64::NAN)
        } else {
            time(reps, || {
                net.forward_t(&x, false).unwrap();
            })
        };
        let mut adam = AdamW::new(vars.all_vars(), ParamsAdamW::default()).unwrap();
        let xb = Tensor::randn(0f32, 1.0, (16, 1, 64, 64), &device()).unwrap();
        let train = time(reps, || {
            let y = net.forward_t(&xb, true).unwrap();
            let loss = (y - &xb).unwrap().sqr().unwrap().mean_all().unwrap();
            adam.backward_step(&loss).unwrap();
        });
        let train_fwd = time(reps, || {
            net.forward_t(&xb, true).unwrap();
        });
        println!(
            "batch norm {batch_norm}: forward 512² {:.3} s [cpu {:.3} s]; training step 16×64² \
             {:.3} s [cpu {:.3} s] (forward alone {:.3} s [cpu {:.3} s])",
            fwd.0, fwd.1, train.0, train.1, train_fwd.0, train_fwd.1
        );
    }
}
