//! The networks on the GPU (candle's CUDA device) against the CPU, on the same inputs:
//! Noise2Void and probabilistic CARE prediction (tiled restore), Deep-STORM density maps with
//! the bundled model, and a few training steps of N2V and CARE. Without a usable GPU the
//! comparisons print why and pass as skipped; scripts/gpu-tests.sh runs this file on a GPU
//! machine, where a comparison that did not run on the GPU fails.
//!
//! Bounds (relative RMS of GPU − CPU): 1e-3 for the loss and every parameter's gradient of
//! one training step (U-Nets of N2V's and CARE's kinds; float32 sums in another order, and
//! batch norm subtracts means that cancel most of a value); 1e-4 for prediction (the same float32 weights; the
//! GPU sums the convolutions in another order, ~1e-6 per layer); 2e-2 for a model trained
//! 12 steps on each device from the same seed, patches and masks (Adam divides each
//! gradient by its own running RMS, so round-off differences in small gradients move the
//! weights by up to a learning-rate step each: 12 × 2e-3 against weights of ~0.1), and the
//! training losses of each epoch within 1e-2 relative.

use candle_core::{ModuleT, Tensor};
use fluorecon::denoise::care::{train_care, CareOptions};
use fluorecon::denoise::n2v::{train_n2v, N2vOptions};
use fluorecon::denoise::{restore, RestoreOptions};
use fluorecon::device::DeviceRequest;
use fluorecon::metrics::relative_rms;
use fluorecon::nn::{new_unet, select_device, DeviceScope, Model, TrainOptions, UNetConfig};
use fluorecon::smlm::deepstorm::DeepStormModel;
use fluorecon::smlm::Camera;
use fluorecon::synthetic::poisson_gaussian;
use fluorecon::{NoProgress, Volume, VoxelSize};

mod common;
use common::{gpu_here, Log};

fn voxel() -> VoxelSize {
    VoxelSize {
        z: 1.0,
        y: 0.1,
        x: 0.1,
    }
}

/// (clean, noisy) 2D images of `side`², 20 photons peak.
fn sample(side: usize, seed: u64) -> (Volume, Volume) {
    let (t, n) = poisson_gaussian((1, side, side), 20.0, 5.0, 2.0, seed).unwrap();
    (Volume::new(t, voxel()), Volume::new(n, voxel()))
}

fn schedule(device: DeviceRequest) -> TrainOptions {
    TrainOptions {
        epochs: 3,
        steps_per_epoch: 4,
        learning_rate: 2e-3,
        seed: 5,
        device,
        ..Default::default()
    }
}

fn n2v_options(device: DeviceRequest) -> N2vOptions {
    N2vOptions {
        unet: UNetConfig {
            base_filters: 8,
            ..N2vOptions::default().unet
        },
        train: schedule(device),
        patch: 32,
        batch: 4,
        ..Default::default()
    }
}

fn care_options(device: DeviceRequest) -> CareOptions {
    CareOptions {
        unet: UNetConfig {
            base_filters: 8,
            ..CareOptions::default().unet
        },
        train: schedule(device),
        probabilistic: true,
        patch: 32,
        batch: 4,
        ..Default::default()
    }
}

/// Restores `image` with `model` on the CPU and on CUDA:0: the GPU must have run it and the
/// results (and the uncertainty maps) agree within 1e-4.
fn compare_restore(what: &str, model: &Model, image: &Volume) {
    let run = |device| {
        let opts = RestoreOptions {
            device,
            ..Default::default()
        };
        let mut log = Log::default();
        let r = restore(model, image, &opts, &mut log).unwrap();
        (r, log.0)
    };
    let (cpu, _) = run(DeviceRequest::Cpu);
    let (gpu, log) = run(DeviceRequest::Cuda(0));
    assert!(
        gpu.device.starts_with("CUDA:0 ("),
        "{what}: ran on {} instead of the GPU: {log:?}",
        gpu.device
    );
    assert!(
        !log.iter().any(|l| l.contains("Warning")),
        "{what}: {log:?}"
    );
    let err = relative_rms(&gpu.image.data, &cpu.image.data);
    println!("{what}: GPU ({}) vs CPU relative RMS {err:.2e}", gpu.device);
    assert!(err < 1e-4, "{what}: relative RMS {err:.2e} ≥ 1e-4");
    if let (Some(g), Some(c)) = (&gpu.uncertainty, &cpu.uncertainty) {
        let err = relative_rms(&g.data, &c.data);
        println!("{what}, uncertainty: relative RMS {err:.2e}");
        assert!(
            err < 1e-4,
            "{what}, uncertainty: relative RMS {err:.2e} ≥ 1e-4"
        );
    }
}

#[test]
fn prediction_on_gpu_matches_cpu() {
    if !gpu_here("prediction_on_gpu_matches_cpu") {
        return;
    }
    let (clean, noisy) = sample(96, 1);
    let n2v = train_n2v(&[&noisy], &n2v_options(DeviceRequest::Cpu), &mut NoProgress).unwrap();
    let care = train_care(
        &[(&noisy, &clean)],
        &care_options(DeviceRequest::Cpu),
        &mut NoProgress,
    )
    .unwrap();
    // Sizes that are no multiple of the tiles or of 2^depth, and a stack.
    let (_, odd) = sample(333, 2);
    let (_, stack) = poisson_gaussian((3, 200, 150), 20.0, 5.0, 2.0, 3).unwrap();
    let stack = Volume::new(stack, voxel());
    for (name, model) in [("Noise2Void", &n2v), ("probabilistic CARE", &care)] {
        compare_restore(&format!("{name}, 333²"), model, &odd);
        compare_restore(&format!("{name}, 3×200×150"), model, &stack);
    }
}

/// Deep-STORM maps with the bundled model on the GPU and the CPU, on simulated frames.
#[test]
fn deepstorm_maps_on_gpu_match_cpu() {
    if !gpu_here("deepstorm_maps_on_gpu_match_cpu") {
        return;
    }
    let Ok(cpu_model) = DeepStormModel::bundled() else {
        eprintln!("deepstorm_maps_on_gpu_match_cpu: skipped (no bundled model in this build)");
        return;
    };
    let (gpu_dev, name) = fluorecon::nn::select_device(DeviceRequest::Cuda(0), &mut NoProgress);
    assert!(!gpu_dev.is_cpu(), "candle could not open CUDA:0");
    let gpu_model = cpu_model.on_device(&gpu_dev).unwrap();
    // 8 frames of 40×36 (no multiple of the network's 4-pixel step): sparse spots.
    let (w, h, n) = (40usize, 36usize, 8usize);
    let (_, noise) = poisson_gaussian((n, h, w), 5.0, 100.0, 3.0, 7).unwrap();
    let mut frames: Vec<f32> = noise.iter().copied().collect();
    for k in 0..n {
        for s in 0..6 {
            let (cx, cy) = (
                5.0 + ((k * 7 + s * 11) % 30) as f32,
                5.0 + ((k * 5 + s * 13) % 26) as f32,
            );
            for y in 0..h {
                for x in 0..w {
                    let r2 = (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2);
                    frames[k * w * h + y * w + x] += 400.0 * (-r2 / 2.88).exp();
                }
            }
        }
    }
    let camera = Camera::default();
    let cpu = cpu_model.predict_maps(&frames, w, h, &camera).unwrap();
    let gpu = gpu_model.predict_maps(&frames, w, h, &camera).unwrap();
    let flat = |v: Vec<f32>| ndarray::Array3::from_shape_vec((1, 1, v.len()), v).unwrap();
    let err = relative_rms(&flat(gpu), &flat(cpu));
    println!("Deep-STORM maps: GPU ({name}) vs CPU relative RMS {err:.2e}");
    assert!(err < 1e-4, "relative RMS {err:.2e} ≥ 1e-4");
}

/// N2V and CARE trained 3 epochs × 4 steps on CUDA:0 and on the CPU from the same seed: the
/// same losses and (nearly) the same predictions.
#[test]
fn training_on_gpu_follows_cpu() {
    if !gpu_here("training_on_gpu_follows_cpu") {
        return;
    }
    let (clean, noisy) = sample(96, 4);
    let compare = |what: &str, cpu: (Model, Vec<f64>), gpu: (Model, Vec<f64>), log: Vec<String>| {
        assert!(
            log.iter().any(|l| l.contains("on CUDA:0 (")),
            "{what}: did not train on the GPU: {log:?}"
        );
        for (e, (c, g)) in cpu.1.iter().zip(&gpu.1).enumerate() {
            let rel = (c - g).abs() / c.abs().max(1e-12);
            println!(
                "{what}: epoch {} loss CPU {c:.6} GPU {g:.6} ({rel:.1e})",
                e + 1
            );
            assert!(
                rel < 1e-2,
                "{what}: epoch {} losses differ by {rel:.1e}",
                e + 1
            );
        }
        let opts = RestoreOptions {
            device: DeviceRequest::Cpu,
            ..Default::default()
        };
        let a = restore(&cpu.0, &noisy, &opts, &mut NoProgress).unwrap();
        let b = restore(&gpu.0, &noisy, &opts, &mut NoProgress).unwrap();
        let err = relative_rms(&b.image.data, &a.image.data);
        println!("{what}: prediction of the GPU-trained vs the CPU-trained model {err:.2e}");
        assert!(err < 2e-2, "{what}: relative RMS {err:.2e} ≥ 2e-2");
    };
    let n2v = |device| {
        let mut log = Log::default();
        let m = train_n2v(&[&noisy], &n2v_options(device), &mut log).unwrap();
        ((m, log.1.iter().map(|e| e.loss).collect()), log.0)
    };
    let (cpu, _) = n2v(DeviceRequest::Cpu);
    let (gpu, log) = n2v(DeviceRequest::Cuda(0));
    compare("Noise2Void", cpu, gpu, log);
    let care = |device| {
        let mut log = Log::default();
        let m = train_care(&[(&noisy, &clean)], &care_options(device), &mut log).unwrap();
        ((m, log.1.iter().map(|e| e.loss).collect()), log.0)
    };
    let (cpu, _) = care(DeviceRequest::Cpu);
    let (gpu, log) = care(DeviceRequest::Cuda(0));
    compare("probabilistic CARE", cpu, gpu, log);
}

/// One training step's loss (MSE against a seeded target, train mode: batch statistics) and
/// the gradient of every parameter, on `device`, for a U-Net made from `seed`.
fn gradients(
    config: &UNetConfig,
    shape: (usize, usize, usize, usize),
    device: (candle_core::Device, String),
) -> (f32, Vec<(String, Vec<f32>)>) {
    let dev = device.0.clone();
    let _scope = DeviceScope::enter(device.0, device.1);
    let (vars, net) = new_unet(config, 7).unwrap();
    let n = shape.0 * shape.1 * shape.2 * shape.3;
    let values = |k: usize| -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + k * 104_729) % 1009) as f32 / 1009.0 - 0.5) * 2.0)
            .collect()
    };
    let x = Tensor::from_vec(values(1), shape, &dev).unwrap();
    let t = Tensor::from_vec(values(2), shape, &dev).unwrap();
    let loss = (net.forward_t(&x, true).unwrap() - &t)
        .unwrap()
        .sqr()
        .unwrap()
        .mean_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    let data = vars.data().lock().unwrap();
    let mut out: Vec<(String, Vec<f32>)> = data
        .iter()
        .filter_map(|(name, var)| {
            let g = grads.get(var.as_tensor())?;
            Some((
                name.clone(),
                g.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            ))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    (loss.to_scalar::<f32>().unwrap(), out)
}

/// The loss and every gradient of one training step agree between CUDA:0 and the CPU, for
/// N2V's network (batch norm, 3×3) and CARE's (5×5, residual), on batches whose middle level
/// has as many channels as pixels along a side (a layout candle's convolutions mistake).
#[test]
fn gradients_on_gpu_match_cpu() {
    if !gpu_here("gradients_on_gpu_match_cpu") {
        return;
    }
    let gpu = select_device(DeviceRequest::Cuda(0), &mut NoProgress);
    assert!(!gpu.0.is_cpu(), "candle could not open CUDA:0");
    let n2v = UNetConfig {
        base_filters: 8,
        ..N2vOptions::default().unet
    };
    let care = UNetConfig {
        base_filters: 8,
        ..CareOptions::default().unet
    };
    let mut worst: f64 = 0.0;
    for (name, config) in [("N2V network", &n2v), ("CARE network", &care)] {
        for shape in [(4, 1, 32, 32), (2, 1, 40, 24)] {
            let (cpu_loss, cpu) =
                gradients(config, shape, (candle_core::Device::Cpu, "CPU".into()));
            let (gpu_loss, gpu_grads) = gradients(config, shape, gpu.clone());
            let rel = ((gpu_loss - cpu_loss) / cpu_loss).abs() as f64;
            println!("{name} {shape:?}: loss CPU {cpu_loss} GPU {gpu_loss} ({rel:.1e})");
            worst = worst.max(rel);
            assert_eq!(
                cpu.len(),
                gpu_grads.len(),
                "{name}: parameters with a gradient"
            );
            // Gradients of parameters that only shift a batch-normalised layer are 0 up to
            // round-off: their error is measured against the largest gradient.
            let scale = cpu
                .iter()
                .map(|(_, g)| g.iter().map(|v| (v * v) as f64).sum::<f64>().sqrt())
                .fold(0.0, f64::max);
            for ((p, c), (_, g)) in cpu.iter().zip(&gpu_grads) {
                let norm = c.iter().map(|v| (v * v) as f64).sum::<f64>().sqrt();
                let diff = c
                    .iter()
                    .zip(g)
                    .map(|(a, b)| ((a - b) * (a - b)) as f64)
                    .sum::<f64>()
                    .sqrt();
                let rel = diff / norm.max(1e-3 * scale);
                println!("  {p}: |g| {norm:.3e}, GPU − CPU {rel:.1e}");
                worst = worst.max(rel);
            }
        }
    }
    assert!(
        worst < 1e-3,
        "largest relative difference {worst:.1e} ≥ 1e-3"
    );
}
