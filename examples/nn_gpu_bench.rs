//! Speed of the networks on the GPU (candle's CUDA device) and on the CPU of the same machine:
//! the U-Net prediction of one 2048×2048 image and one N2V-style training step (forward +
//! backward + Adam, MSE, 16 patches of 64²), depth-2 U-Net with 32 filters of 3×3 and batch
//! norm (N2V's network; bench/unet_gpu_bench.py runs the same network in PyTorch), and
//! Deep-STORM density maps of 64×64 frames with the bundled model, in batches.
//! `cargo run --release --features cuda --example nn_gpu_bench -- [size] [reps] [frames]`
//! (defaults 2048, 10, 512).
//!
//! Prints the median wall time over `reps` runs after two warm-ups; each GPU run ends with a
//! synchronisation of the device, so the times include all the kernels the run launched.
use candle_core::{Device, ModuleT, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use fluorecon::device::DeviceRequest;
use fluorecon::nn::{new_unet, select_device, DeviceScope, UNetConfig};
use fluorecon::smlm::deepstorm::DeepStormModel;
use fluorecon::smlm::Camera;
use fluorecon::NoProgress;
use std::time::Instant;

/// Median wall seconds of `reps` runs of `f` after two warm-ups; `f` ends with a device sync.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    f();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(|a, b| a.total_cmp(b));
    t[t.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (size, reps, frames) = (num(0, 2048), num(1, 10).max(1), num(2, 512).max(8));
    let (gpu, gpu_name) = select_device(DeviceRequest::Cuda(0), &mut NoProgress);
    let mut devices = vec![(gpu, gpu_name)];
    if !devices[0].0.is_cpu() {
        devices.push((Device::Cpu, fluorecon::nn::cpu_name()));
    }
    for (dev, name) in devices {
        let _scope = DeviceScope::enter(dev.clone(), name.clone());
        let sync = || dev.synchronize().expect("device sync");
        let cfg = UNetConfig {
            depth: 2,
            base_filters: 32,
            kernel_size: 3,
            batch_norm: true,
            residual: false,
            ..Default::default()
        };
        let (vars, net) = new_unet(&cfg, 1).expect("U-Net");
        // The CPU is timed on a smaller image (a 2048² forward takes seconds there) and
        // scaled by the pixel count; the GPU on the full size.
        let side = if dev.is_cpu() { size.min(512) } else { size };
        let x = Tensor::randn(0f32, 1.0, (1, 1, side, side), &dev).unwrap();
        let fwd = time(reps, || {
            net.forward_t(&x, false).unwrap();
            sync();
        }) * (size * size) as f64
            / (side * side) as f64;
        let mut adam = AdamW::new(vars.all_vars(), ParamsAdamW::default()).unwrap();
        let xb = Tensor::randn(0f32, 1.0, (16, 1, 64, 64), &dev).unwrap();
        let step = time(reps, || {
            let y = net.forward_t(&xb, true).unwrap();
            let loss = (y - &xb).unwrap().sqr().unwrap().mean_all().unwrap();
            adam.backward_step(&loss).unwrap();
            sync();
        });
        println!(
            "BENCH  U-Net (N2V network, batch norm) on {name}: prediction {size}² {:.4} s \
             ({:.1} Mpixel/s){}; training step 16×64² {:.4} s ({:.1} steps/s)",
            fwd,
            (size * size) as f64 / fwd / 1e6,
            if side < size {
                format!(" [timed at {side}², scaled]")
            } else {
                String::new()
            },
            step,
            1.0 / step
        );

        let model = match DeepStormModel::bundled().and_then(|m| m.into_device(&dev)) {
            Ok(m) => m,
            Err(e) => {
                println!("Deep-STORM on {name}: skipped ({e})");
                continue;
            }
        };
        let (w, h, batch) = (64usize, 64usize, 8usize);
        let n = if dev.is_cpu() { batch * 4 } else { frames };
        let stack: Vec<f32> = (0..n * w * h)
            .map(|i| 100.0 + ((i * 7919) % 97) as f32)
            .collect();
        let camera = Camera::default();
        let t = time(reps.min(5), || {
            for part in stack.chunks(batch * w * h) {
                model.predict_maps(part, w, h, &camera).unwrap();
            }
        });
        println!(
            "BENCH  Deep-STORM maps on {name}: {n} frames of {w}×{h} in batches of {batch}: \
             {t:.3} s ({:.0} frames/s)",
            n as f64 / t
        );
    }
}
