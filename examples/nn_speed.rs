//! Speed of the U-Net on the CPU: forward pass of one 512×512 image and one training step
//! (forward + backward + Adam) of 16 patches of 64², depth-2 U-Net with 32 filters of 3×3
//! (the benchmark of issue 3). `cargo run --release --example nn_speed [threads]`.

use candle_core::{DType, ModuleT, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use fluorecon::nn::{device, new_unet, UNetConfig};
use std::time::Instant;

fn main() {
    if let Some(t) = std::env::args().nth(1) {
        std::env::set_var("RAYON_NUM_THREADS", &t);
    }
    println!("threads: {}", candle_core::utils::get_num_threads());
    for batch_norm in [false, true] {
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
        net.forward_t(&x, false).unwrap();
        let t = Instant::now();
        let reps = 3;
        for _ in 0..reps {
            net.forward_t(&x, false).unwrap();
        }
        let fwd = t.elapsed().as_secs_f64() / reps as f64;
        let mut adam = AdamW::new(vars.all_vars(), ParamsAdamW::default()).unwrap();
        let xb = Tensor::randn(0f32, 1.0, (16, 1, 64, 64), &device()).unwrap();
        let step = |adam: &mut AdamW| {
            let y = net.forward_t(&xb, true).unwrap();
            let loss = (y - &xb).unwrap().sqr().unwrap().mean_all().unwrap();
            adam.backward_step(&loss).unwrap();
        };
        step(&mut adam);
        let t = Instant::now();
        for _ in 0..reps {
            step(&mut adam);
        }
        let train = t.elapsed().as_secs_f64() / reps as f64;
        let t = Instant::now();
        for _ in 0..reps {
            net.forward_t(&xb, true).unwrap();
        }
        let train_fwd = t.elapsed().as_secs_f64() / reps as f64;
        println!(
            "batch norm {batch_norm}: forward 512² {fwd:.3} s; training step 16×64² {train:.3} s \
             (forward alone {train_fwd:.3} s)"
        );
        let _ = DType::F32;
    }
}
