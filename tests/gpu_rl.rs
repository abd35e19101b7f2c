//! Richardson–Lucy on the GPU against the CPU, on the same inputs (seeded random and
//! simulated). Without a usable GPU (the CPU build, or no driver) the GPU comparisons print why
//! and pass as skipped; the fallback test runs everywhere. scripts/gpu-tests.sh runs this file
//! on a GPU machine, where a comparison that did not run on the GPU fails.
//!
//! Bounds (relative RMS of GPU − CPU over the image): 1e-4 for RL after 20 iterations (f32
//! FFTs in a different order: ~1e-6 per transform), 2e-3 with TV, whose unit gradient
//! ∇x/|∇x| jumps where a difference changes sign by round-off. Biggs–Andrews acceleration
//! amplifies round-off: on the CPU alone, a 1e-6 relative perturbation of the input moves
//! the result by ~1e-6 after 3 iterations, 1e-5–5e-5 after 5 and 1.8e-3–3.0e-3 after 20
//! (random and simulated data, with and without TV; a voxel the extrapolation clamps to 0
//! stays 0 under RL's multiplicative update, so the clamped sets part). Accelerated runs are
//! therefore compared tightly after 3 iterations (1e-5: the extrapolation has been applied
//! twice, a wrong step or α shows at once) and, after 20, within 1e-2 (3× the CPU's own
//! sensitivity to round-off).

use fluorecon::deconv::{richardson_lucy, Boundary, Deconvolved, RlOptions};
use fluorecon::device::{Device, DeviceRequest};
use fluorecon::metrics::relative_rms;
use fluorecon::psf::Psf;
use fluorecon::synthetic::{widefield, WidefieldOptions};
use fluorecon::{NoProgress, Volume, VoxelSize};
use ndarray::Array3;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod common;
use common::gpu_here;

fn voxel() -> VoxelSize {
    VoxelSize {
        z: 0.2,
        y: 0.065,
        x: 0.065,
    }
}

fn run(image: &Array3<f32>, psf: &Psf, opts: &RlOptions, device: DeviceRequest) -> Deconvolved {
    let opts = RlOptions {
        device,
        ..opts.clone()
    };
    richardson_lucy(
        &Volume::new(image.clone(), voxel()),
        psf,
        &opts,
        &mut NoProgress,
    )
    .unwrap()
}

/// RL on CUDA:0 and on the CPU; fails unless the GPU ran and the results agree within `bound`.
fn compare(name: &str, image: &Array3<f32>, psf: &Psf, opts: &RlOptions, bound: f64) {
    let cpu = run(image, psf, opts, DeviceRequest::Cpu);
    let gpu = run(image, psf, opts, DeviceRequest::Cuda(0));
    assert!(
        matches!(gpu.device, Device::Cuda { .. }),
        "{name}: ran on {} instead of the GPU: {:?}",
        gpu.device,
        gpu.warnings
    );
    assert_eq!(gpu.iterations, cpu.iterations, "{name}");
    let err = relative_rms(&gpu.volume.data, &cpu.volume.data);
    println!(
        "{name}: GPU ({}) vs CPU relative RMS {err:.2e} (bound {bound:.0e})",
        gpu.device
    );
    assert!(err < bound, "{name}: relative RMS {err:.2e} ≥ {bound:.0e}");
}

fn random_volume(shape: (usize, usize, usize), seed: u64) -> Array3<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array3::from_shape_fn(shape, |_| rng.gen_range(0.0f32..100.0))
}

fn twenty(boundary: Boundary) -> RlOptions {
    RlOptions {
        iterations: 20,
        boundary,
        ..Default::default()
    }
}

#[test]
fn gpu_matches_cpu_on_random_3d() {
    if !gpu_here("gpu_matches_cpu_on_random_3d") {
        return;
    }
    let image = random_volume((20, 48, 40), 11);
    let psf = Psf::gaussian_voxels((9, 11, 11), (2.0, 1.5));
    compare(
        "random 3D non-circulant",
        &image,
        &psf,
        &twenty(Boundary::NonCirculant),
        1e-4,
    );
    compare(
        "random 3D circulant",
        &image,
        &psf,
        &twenty(Boundary::Circulant),
        1e-4,
    );
    let accelerated = RlOptions {
        acceleration: true,
        ..twenty(Boundary::NonCirculant)
    };
    let three = RlOptions {
        iterations: 3,
        ..accelerated.clone()
    };
    compare(
        "random 3D accelerated, 3 iterations",
        &image,
        &psf,
        &three,
        1e-5,
    );
    compare("random 3D accelerated", &image, &psf, &accelerated, 1e-2);
}

#[test]
fn gpu_matches_cpu_on_simulated_data() {
    if !gpu_here("gpu_matches_cpu_on_simulated_data") {
        return;
    }
    // A widefield-like PSF: σ 1.7 planes axially, 1.3 pixels laterally.
    let psf = Psf::gaussian_voxels((15, 31, 31), (1.7, 1.3));
    let sim = widefield((24, 64, 64), &psf, &WidefieldOptions::default()).unwrap();
    compare(
        "simulated 3D",
        &sim.noisy,
        &psf,
        &twenty(Boundary::NonCirculant),
        1e-4,
    );
    let tv = RlOptions {
        tv_lambda: 0.002,
        acceleration: true,
        ..twenty(Boundary::NonCirculant)
    };
    let tv3 = RlOptions {
        iterations: 3,
        ..tv.clone()
    };
    compare(
        "simulated 3D TV + accelerated, 3 iterations",
        &sim.noisy,
        &psf,
        &tv3,
        1e-5,
    );
    compare("simulated 3D TV + accelerated", &sim.noisy, &psf, &tv, 1e-2);
    // 2D PSF on a stack: plane by plane; the tolerance stops at the same iteration.
    let psf2 = Psf::gaussian_voxels((1, 31, 31), (1.0, 1.3));
    let stopping = RlOptions {
        iterations: 40,
        tolerance: 1e-3,
        ..Default::default()
    };
    compare(
        "simulated plane by plane, tolerance",
        &sim.noisy,
        &psf2,
        &stopping,
        1e-4,
    );
}

/// Without a usable GPU a CUDA request says why in the warnings, runs on the CPU and gives the
/// CPU's result exactly; on a GPU machine the same request runs there.
#[test]
fn cuda_request_without_gpu_falls_back_to_cpu() {
    let image = random_volume((6, 24, 20), 5);
    let psf = Psf::gaussian_voxels((5, 7, 7), (1.0, 1.2));
    let opts = twenty(Boundary::NonCirculant);
    let cpu = run(&image, &psf, &opts, DeviceRequest::Cpu);
    assert!(cpu.warnings.is_empty(), "{:?}", cpu.warnings);
    let asked = run(&image, &psf, &opts, DeviceRequest::Cuda(0));
    let here = gpu_here("cuda_request_without_gpu_falls_back_to_cpu, GPU half");
    if here {
        assert!(
            matches!(asked.device, Device::Cuda { ordinal: 0, .. }),
            "{asked:?}"
        );
        return;
    }
    assert!(
        matches!(asked.device, Device::Cpu { .. }),
        "{}",
        asked.device
    );
    assert!(
        asked.warnings.iter().any(
            |w| w.starts_with("CUDA:0 was requested but cannot be used (")
                && w.ends_with("); running on the CPU")
        ),
        "{:?}",
        asked.warnings
    );
    assert_eq!(asked.volume.data, cpu.volume.data);
    // A GPU number the driver does not have is reported the same way.
    let far = run(&image, &psf, &opts, DeviceRequest::Cuda(7));
    assert!(
        far.warnings[0].starts_with("CUDA:7 was requested but cannot be used"),
        "{:?}",
        far.warnings
    );
}
