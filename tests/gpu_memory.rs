//! What happens when the GPU runs out of memory: with all but `LEFT_FREE` of the GPU's memory
//! taken by this test, Richardson–Lucy asked for CUDA must say that it does not fit and give
//! the CPU's result; a network prediction must retry with smaller tiles (and, if even the
//! smallest does not fit, run on the CPU), with the CPU's result within 1e-4. One test in its
//! own file: filling the GPU would starve tests running beside it. Built only with the `cuda`
//! feature; skipped without a GPU.
#![cfg(feature = "cuda")]

use candle_core::{DType, Tensor};
use fluorecon::deconv::{richardson_lucy, RlOptions};
use fluorecon::denoise::n2v::{train_n2v, N2vOptions};
use fluorecon::denoise::{restore, RestoreOptions};
use fluorecon::device::{Device, DeviceRequest};
use fluorecon::metrics::relative_rms;
use fluorecon::nn::{TrainOptions, UNetConfig};
use fluorecon::psf::Psf;
use fluorecon::synthetic::poisson_gaussian;
use fluorecon::{NoProgress, Volume, VoxelSize};

mod common;
use common::{gpu_here, Log};

/// GPU memory left free while the tests run, bytes.
const LEFT_FREE: usize = 256 << 20;

#[test]
fn out_of_gpu_memory_falls_back() {
    if !gpu_here("out_of_gpu_memory_falls_back") {
        return;
    }
    let voxel = VoxelSize {
        z: 0.2,
        y: 0.1,
        x: 0.1,
    };
    // Train a small N2V model first (on the CPU), and open candle's device.
    let (_, noisy) = poisson_gaussian((1, 96, 96), 20.0, 5.0, 2.0, 1).unwrap();
    let opts = N2vOptions {
        unet: UNetConfig {
            base_filters: 8,
            ..N2vOptions::default().unet
        },
        train: TrainOptions {
            epochs: 1,
            steps_per_epoch: 3,
            device: DeviceRequest::Cpu,
            ..Default::default()
        },
        patch: 32,
        batch: 4,
        ..Default::default()
    };
    let model = train_n2v(&[&Volume::new(noisy, voxel)], &opts, &mut NoProgress).unwrap();
    let (dev, _) = fluorecon::nn::select_device(DeviceRequest::Cuda(0), &mut NoProgress);
    assert!(!dev.is_cpu(), "candle could not open CUDA:0");
    let gpu = fluorecon::gpu::Gpu::open(0).unwrap();

    // The inputs and the CPU results before the GPU is filled.
    let psf = Psf::gaussian_voxels((15, 31, 31), (1.7, 1.3));
    let (_, stack) = poisson_gaussian((48, 384, 384), 50.0, 5.0, 2.0, 2).unwrap();
    let stack = Volume::new(stack, voxel);
    let rl = |device| {
        let o = RlOptions {
            iterations: 3,
            device,
            ..Default::default()
        };
        richardson_lucy(&stack, &psf, &o, &mut NoProgress).unwrap()
    };
    let rl_cpu = rl(DeviceRequest::Cpu);
    let (_, image) = poisson_gaussian((1, 2048, 2048), 20.0, 5.0, 2.0, 3).unwrap();
    let image = Volume::new(image, voxel);
    let restore_on = |device, log: &mut Log| {
        let o = RestoreOptions {
            device,
            ..Default::default()
        };
        restore(&model, &image, &o, log).unwrap()
    };
    let restored_cpu = restore_on(DeviceRequest::Cpu, &mut Log::default());

    // Take all but LEFT_FREE bytes, in blocks of 1 GiB and a last smaller one.
    let mut hog = Vec::new();
    loop {
        let (free, _) = gpu.memory().unwrap();
        if free <= LEFT_FREE + (16 << 20) {
            break;
        }
        let take = (free - LEFT_FREE).min(1 << 30);
        match Tensor::zeros(take, DType::U8, &dev) {
            Ok(t) => hog.push(t),
            Err(e) => panic!("could not fill the GPU: {e}"),
        }
    }
    let (free, total) = gpu.memory().unwrap();
    println!("GPU filled: {} MiB free of {} MiB", free >> 20, total >> 20);

    let r = rl(DeviceRequest::Cuda(0));
    println!("RL warnings: {:?}", r.warnings);
    assert!(
        matches!(r.device, Device::Cpu { .. }),
        "RL ran on {} with {} MiB free",
        r.device,
        free >> 20
    );
    assert!(
        r.warnings.iter().any(|w| w.contains("MiB of GPU memory")),
        "{:?}",
        r.warnings
    );
    assert_eq!(relative_rms(&r.volume.data, &rl_cpu.volume.data), 0.0);

    let mut log = Log::default();
    let restored = restore_on(DeviceRequest::Cuda(0), &mut log);
    for l in &log.0 {
        println!("restore: {l}");
    }
    assert!(
        log.0.iter().any(|l| l.contains("trying tiles of")),
        "no retry with smaller tiles: {:?}",
        log.0
    );
    let err = relative_rms(&restored.image.data, &restored_cpu.image.data);
    println!(
        "restore under memory pressure on {}: relative RMS {err:.2e}",
        restored.device
    );
    assert!(err < 1e-4, "relative RMS {err:.2e}");
    drop(hog);
}
