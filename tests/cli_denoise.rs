//! End-to-end tests of `fluorecon n2v …` and `fluorecon care …`: the built binary on tiny
//! images with tiny networks (these check the plumbing; `tests/denoise.rs` checks quality).

use fluorecon::io::tiff::{read_tiff, write_tiff, Hyperstack};
use fluorecon::synthetic::poisson_gaussian;
use fluorecon::{Volume, VoxelSize};
mod common;
use common::{fails, ok, TempDir};

const VOXEL: VoxelSize = VoxelSize {
    z: 0.5,
    y: 0.1,
    x: 0.1,
};

/// Writes a 2-plane noisy image and its truth; returns their paths.
fn images(dir: &TempDir, seed: u64) -> (String, String) {
    let (truth, noisy) = poisson_gaussian((2, 64, 48), 20.0, 5.0, 2.0, seed).unwrap();
    let n = dir.path(&format!("noisy{seed}.tif"));
    let t = dir.path(&format!("truth{seed}.tif"));
    write_tiff(
        n.as_ref(),
        &Hyperstack::from_volume(&Volume::new(noisy, VOXEL)),
    )
    .unwrap();
    write_tiff(
        t.as_ref(),
        &Hyperstack::from_volume(&Volume::new(truth, VOXEL)),
    )
    .unwrap();
    (n, t)
}

const TINY: &[&str] = &[
    "--filters",
    "4",
    "--epochs",
    "2",
    "--steps",
    "3",
    "--batch",
    "4",
    "--patch",
    "32",
    "--masked",
    "2",
];

#[test]
fn n2v_train_predict_and_denoise_keep_dims_and_calibration() {
    let dir = TempDir::new("n2v");
    let (noisy, _) = images(&dir, 1);
    let model = dir.path("model");
    let mut args = vec!["n2v", "train", &noisy, "-o", &model];
    args.extend_from_slice(TINY);
    let err = ok(&args);
    assert!(err.contains("epoch 2/2"), "{err}");
    assert!(std::path::Path::new(&model)
        .join("model.safetensors")
        .exists());
    let json = std::fs::read_to_string(std::path::Path::new(&model).join("model.json")).unwrap();
    assert!(
        json.contains("\"method\": \"n2v\"") && json.contains("validation_loss"),
        "{json}"
    );

    let out = dir.path("out.tif");
    ok(&[
        "n2v", "predict", &noisy, "--model", &model, "-o", &out, "--tile", "64",
    ]);
    let h = read_tiff(out.as_ref()).unwrap();
    assert_eq!((h.width, h.height, h.slices), (48, 64, 2));
    assert!((h.voxel.x - 0.1).abs() < 1e-9 && (h.voxel.z - 0.5).abs() < 1e-9);

    let out2 = dir.path("out2.tif");
    let saved = dir.path("saved");
    let mut args = vec![
        "n2v",
        "denoise",
        &noisy,
        "-o",
        &out2,
        "--save-model",
        &saved,
    ];
    args.extend_from_slice(TINY);
    ok(&args);
    assert_eq!(read_tiff(out2.as_ref()).unwrap().slices, 2);
    assert!(std::path::Path::new(&saved).join("model.json").exists());

    // No uncertainty from an N2V model.
    let err = fails(&[
        "n2v",
        "predict",
        &noisy,
        "--model",
        &model,
        "-o",
        &out,
        "--uncertainty",
        &dir.path("s.tif"),
    ]);
    assert!(err.contains("probabilistic CARE"), "{err}");
}

#[test]
fn care_train_and_predict_with_uncertainty() {
    let dir = TempDir::new("care");
    let (low1, high1) = images(&dir, 2);
    let (low2, _) = images(&dir, 3);
    let model = dir.path("care");
    let mut args = vec![
        "care",
        "train",
        "--low",
        &low1,
        "--high",
        &high1,
        "-o",
        &model,
        "--probabilistic",
        "--kernel",
        "3",
    ];
    args.extend_from_slice(&TINY[..TINY.len() - 2]);
    ok(&args);
    let (out, sigma) = (dir.path("r.tif"), dir.path("sigma.tif"));
    ok(&[
        "care",
        "predict",
        &low2,
        "--model",
        &model,
        "-o",
        &out,
        "--uncertainty",
        &sigma,
        "--percentiles",
        "1,99.5",
    ]);
    let s = read_tiff(sigma.as_ref()).unwrap();
    assert_eq!((s.width, s.height, s.slices), (48, 64, 2));

    // Unpaired images.
    let err = fails(&[
        "care", "train", "--low", &low1, "--low", &low2, "--high", &high1, "-o", &model,
    ]);
    assert!(err.contains("pairs"), "{err}");
    // Missing and corrupt models; nothing is written.
    let bad = dir.path("nowhere");
    let err = fails(&["care", "predict", &low2, "--model", &bad, "-o", &out]);
    assert!(err.contains("model.json"), "{err}");
    let weights = std::path::Path::new(&model).join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 3]).unwrap();
    let fresh = dir.path("fresh.tif");
    let err = fails(&["care", "predict", &low2, "--model", &model, "-o", &fresh]);
    assert!(err.contains("corrupt or truncated"), "{err}");
    assert!(!std::path::Path::new(&fresh).exists());
}

/// `fluorecon denoise-classical` and `estimate-noise`: dimensions and calibration kept, the
/// noise clearly reduced against the truth, the given model logged as given, bad camera
/// values and half a dark/flat pair refused.
#[test]
fn classical_denoising_from_the_command_line() {
    let dir = TempDir::new("classical");
    let (noisy, truth) = images(&dir, 4);
    let out = dir.path("bm3d.tif");
    let err = ok(&["denoise-classical", &noisy, "-o", &out]);
    assert!(err.contains("estimated Poisson–Gaussian noise"), "{err}");
    assert!(err.contains("2 planes of the stack one by one"), "{err}");
    let h = read_tiff(out.as_ref()).unwrap();
    assert_eq!((h.width, h.height, h.slices), (48, 64, 2));
    assert!((h.voxel.x - 0.1).abs() < 1e-9 && (h.voxel.z - 0.5).abs() < 1e-9);
    let t = read_tiff(truth.as_ref()).unwrap();
    let n = read_tiff(noisy.as_ref()).unwrap();
    let mse = |a: &[f32]| {
        a.iter()
            .zip(&t.data)
            .map(|(x, y)| ((x - y) as f64).powi(2))
            .sum::<f64>()
            / a.len() as f64
    };
    let (before, after) = (mse(&n.data), mse(&h.data));
    assert!(after < before / 3.0, "MSE {before} → {after}");

    // The simulator's camera: gain 1, read noise 2 (variance at zero 4).
    let err = ok(&[
        "denoise-classical",
        &noisy,
        "-o",
        &out,
        "--gain",
        "1",
        "--offset",
        "0",
        "--read-noise",
        "2",
    ]);
    assert!(
        err.contains("given Poisson–Gaussian noise: variance = 1.0000 · mean + 4.0000 ADU²"),
        "{err}"
    );
    let o = common::fluorecon(&["estimate-noise", &noisy]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.starts_with("channel 1 frame 1: gain "),
        "{text}"
    );

    let err = fails(&[
        "denoise-classical",
        &noisy,
        "-o",
        &out,
        "--gain",
        "0",
        "--offset",
        "0",
        "--read-noise",
        "2",
    ]);
    assert!(err.contains("the gain must be a positive number"), "{err}");
    // Half a pair is a usage error (exit code 2), and nothing is written.
    let half = dir.path("half.tif");
    let o = common::fluorecon(&["denoise-classical", &noisy, "-o", &half, "--dark", &noisy]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!std::path::Path::new(&half).exists());
}
