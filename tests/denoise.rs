//! Denoising end to end on simulated fluorescence images (beads and filaments, Poisson shot
//! noise + Gaussian read noise, seeded): Noise2Void must gain at least 5 dB PSNR over the
//! noisy input, CARE more than Noise2Void; model files round-trip; bad inputs fail clearly.
//! Small networks and schedules, sized for CI on two cores.

use fluorecon::denoise::care::{train_care, CareOptions};
use fluorecon::denoise::n2v::{denoise_n2v, train_n2v, N2vMasking, N2vOptions};
use fluorecon::denoise::{restore, RestoreOptions};
use fluorecon::nn::{load_model, save_model, TrainOptions, UNetConfig};
use fluorecon::simulate::{poisson_gaussian, psnr};
use fluorecon::{Error, NoProgress, Progress, Volume, VoxelSize};
use std::time::Instant;

const SHAPE: (usize, usize, usize) = (1, 128, 128);
const PEAK: f32 = 20.0;
const BACKGROUND: f32 = 5.0;
const READ_NOISE: f32 = 2.0;

fn voxel() -> VoxelSize {
    VoxelSize {
        z: 1.0,
        y: 0.1,
        x: 0.1,
    }
}

fn sample(seed: u64) -> (Volume, Volume) {
    let (truth, noisy) = poisson_gaussian(SHAPE, PEAK, BACKGROUND, READ_NOISE, seed).unwrap();
    (Volume::new(truth, voxel()), Volume::new(noisy, voxel()))
}

fn small_n2v() -> N2vOptions {
    N2vOptions {
        unet: UNetConfig {
            depth: 2,
            base_filters: 16,
            kernel_size: 3,
            batch_norm: true,
            residual: false,
            ..Default::default()
        },
        train: TrainOptions {
            epochs: 10,
            steps_per_epoch: 20,
            learning_rate: 2e-3,
            seed: 3,
            ..Default::default()
        },
        masking: N2vMasking {
            masked_percent: 1.5,
            ..Default::default()
        },
        patch: 32,
        batch: 16,
        ..Default::default()
    }
}

#[test]
fn n2v_gains_5_db() {
    let (truth, noisy) = sample(11);
    let before = psnr(&noisy.data, &truth.data, 0);
    let t = Instant::now();
    let mut epochs = Vec::new();
    let (restored, model) = denoise_n2v(
        &noisy,
        &small_n2v(),
        &RestoreOptions::default(),
        &mut NoProgress,
        &mut |e| epochs.push(e.clone()),
    )
    .unwrap();
    let after = psnr(&restored.image.data, &truth.data, 0);
    eprintln!(
        "N2V: noisy {before:.2} dB → {after:.2} dB ({:+.2} dB) in {:.1} s; losses {:?}",
        after - before,
        t.elapsed().as_secs_f64(),
        epochs
            .iter()
            .map(|e| (e.loss, e.validation_loss))
            .collect::<Vec<_>>()
    );
    assert_eq!(epochs.len(), 10);
    assert_eq!(restored.image.voxel, noisy.voxel);
    assert!(
        after - before >= 5.0,
        "N2V gained only {:.2} dB",
        after - before
    );
    assert!(model.info.history.best_epoch >= 1);
}
