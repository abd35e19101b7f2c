use super::training::TrainingSettings;
use super::*;
use crate::nn::{device, TrainOptions};
use crate::smlm::Camera;
use crate::NoProgress;
use candle_core::{DType, ModuleT, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::Arc;

fn tiny() -> DeepStormConfig {
    DeepStormConfig {
        upsampling: 2,
        filters: [4, 8, 8],
        bottleneck: 16,
        kernel_size: 3,
    }
}

#[test]
fn network_maps_frames_to_the_fine_grid() {
    let (_, net) = new_net(&tiny(), 3).unwrap();
    let x = Tensor::zeros((2, 1, 12, 8), DType::F32, &device()).unwrap();
    let y = net.forward_t(&x, false).unwrap();
    assert_eq!(y.dims(), &[2, 1, 24, 16]);
    // 8 is the multiple for ×1, 4 for ×2, 1 for ×8.
    assert_eq!(tiny().frame_multiple(), 4);
    assert_eq!(DeepStormConfig::default().frame_multiple(), 1);
    let bad = Tensor::zeros((1, 1, 10, 8), DType::F32, &device()).unwrap();
    let e = net.forward_t(&bad, false).unwrap_err().to_string();
    assert!(e.contains("multiples of 4"), "{e}");
}

#[test]
fn training_targets_hold_one_spike_per_molecule_at_its_position() {
    let settings = TrainingSettings {
        density: [3.0, 3.0],
        ..TrainingSettings::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let up = 4;
    let f = settings.patch_px * up;
    let mut total = 0.0;
    for _ in 0..20 {
        let (input, target) = settings.simulate_patch(up, &mut rng);
        assert_eq!(input.len(), settings.patch_px * settings.patch_px);
        assert_eq!(target.len(), f * f);
        assert!(input.iter().all(|v| v.is_finite()));
        let sum: f32 = target.iter().sum();
        // Whole molecules only.
        let molecules = sum / SPIKE;
        assert!((molecules - molecules.round()).abs() < 1e-3, "{molecules}");
        total += molecules;
    }
    // 3 per µm² on 1.6 × 1.6 µm: 7.7 per patch on average.
    let mean = total / 20.0;
    assert!((mean - 7.7).abs() < 2.0, "{mean} molecules per patch");
    // Bilinear share: the centroid of a splat is the position.
    let mut t = vec![0.0f32; 16 * 16];
    splat_for_test(&mut t, 16, 5.3, 7.8);
    let (mut sx, mut sy, mut s) = (0.0, 0.0, 0.0);
    for j in 0..16 {
        for i in 0..16 {
            let v = t[j * 16 + i] as f64;
            sx += v * i as f64;
            sy += v * j as f64;
            s += v;
        }
    }
    assert!((sx / s - 5.3).abs() < 1e-5 && (sy / s - 7.8).abs() < 1e-5);
    assert!((s - SPIKE as f64).abs() < 1e-3);
}

fn splat_for_test(t: &mut [f32], f: usize, u: f64, v: f64) {
    training::splat_at(t, f, u, v)
}

#[test]
fn peaks_are_found_at_sub_pixel_positions() {
    let (w, h) = (40, 30);
    let mut map = vec![0.0f32; w * h];
    // Two molecules 5 fine pixels apart, positions in fine pixels (centres at i + ½).
    let truth = [(12.3, 14.6), (17.1, 15.2), (30.5, 5.5)];
    for &(x, y) in &truth {
        splat_for_test(&mut map, w, x - 0.5, y - 0.5);
    }
    let kernel = gaussian_kernel(BLUR_SIGMA);
    let peaks = find_peaks(&map, w, h, &kernel, 0.3 * single_peak(&kernel));
    assert_eq!(peaks.len(), 3, "{peaks:?}");
    for &(x, y) in &truth {
        let d = peaks
            .iter()
            .map(|&(px, py)| ((px - x).powi(2) + (py - y).powi(2)).sqrt())
            .fold(f64::INFINITY, f64::min);
        assert!(d < 0.15, "({x}, {y}) found {d} fine pixels away: {peaks:?}");
    }
    // A threshold above one molecule's peak finds none.
    assert!(find_peaks(&map, w, h, &kernel, 1.01 * single_peak(&kernel)).is_empty());
}

#[test]
fn amplitudes_of_overlapping_molecules_are_recovered() {
    let (w, h) = (24, 20);
    let sigma = 1.3;
    let truth = [(8.2, 9.1, 1500.0), (10.0, 10.4, 800.0), (18.5, 4.5, 3000.0)];
    let mut img = vec![12.0; w * h];
    let mut scratch = crate::smlm::synthetic::SpotScratch::default();
    for &(x, y, n) in &truth {
        scratch.add_spot(&mut img, (w, h), (x, y), sigma, n);
    }
    let pos: Vec<(f64, f64)> = truth.iter().map(|t| (t.0, t.1)).collect();
    // Exact data: the PSF of the fit is the simulator's; the window is ±4σ (>99.99 %).
    let fit = fit_amplitudes(&img, w, h, &pos, sigma);
    for (f, t) in fit.photons.iter().zip(&truth) {
        assert!((f - t.2).abs() < 1e-3 * t.2, "{f} vs {}", t.2);
    }
    assert!((fit.background - 12.0).abs() < 1e-3, "{}", fit.background);
    assert!(fit.residual_std < 0.05, "{}", fit.residual_std);
    // With Poisson noise (seeded), within a few percent.
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let noisy: Vec<f64> = img
        .iter()
        .map(|&m| {
            use rand_distr::Distribution;
            rand_distr::Poisson::new(m).unwrap().sample(&mut rng)
        })
        .collect();
    let fit = fit_amplitudes(&noisy, w, h, &pos, sigma);
    for (f, t) in fit.photons.iter().zip(&truth) {
        assert!((f - t.2).abs() < 0.08 * t.2, "{f} vs {}", t.2);
    }
}

#[test]
fn mortensen_precision_matches_the_formula_limits() {
    // No background: σ_a / √N.
    let s = 1.2f64;
    let sa = (s * s + 1.0 / 12.0).sqrt();
    let p = mortensen_px(1000.0, 0.0, s, 1.0);
    assert!((p - sa / 1000f64.sqrt()).abs() < 1e-12);
    // An EM camera's excess noise: × √2.
    assert!((mortensen_px(1000.0, 0.0, s, 2.0) / p - 2f64.sqrt()).abs() < 1e-12);
    // Background makes it worse; no photons gives no number.
    assert!(mortensen_px(1000.0, 20.0, s, 1.0) > 1.4 * p);
    assert!(mortensen_px(0.0, 20.0, s, 1.0).is_nan());
}

#[test]
fn frames_are_normalised_by_the_camera_and_the_median() {
    let cam = Camera {
        offset_adu: 100.0,
        electrons_per_adu: 2.0,
        em_gain: None,
    };
    let adu = [110.0, 110.0, 110.0, 160.0, 110.0];
    let mut out = [0.0f32; 5];
    normalise_frame(&adu, &cam, 10.0, &mut out);
    // Photons 20, …, 120; median 20; (120 − 20) / 10 = 10.
    assert_eq!(out, [0.0, 0.0, 0.0, 10.0, 0.0]);
}

/// A small network learns to find sparse, bright molecules in a few hundred steps: the
/// validation loss falls by more than half and simulated molecules are found.
#[test]
fn a_small_network_learns_to_localize() {
    let config = DeepStormConfig {
        upsampling: 2,
        filters: [8, 16, 16],
        bottleneck: 32,
        kernel_size: 3,
    };
    let settings = TrainingSettings {
        photons: [2000.0, 4000.0],
        background: [10.0, 20.0],
        density: [0.5, 1.5],
        patch_px: 16,
        batch_size: 8,
        validation_patches: 32,
        schedule: TrainOptions {
            epochs: 8,
            steps_per_epoch: 40,
            learning_rate: 3e-3,
            lr_patience: 10,
            seed: 4,
            ..TrainOptions::default()
        },
        ..TrainingSettings::default()
    };
    let model = train_deepstorm("tiny", &config, &settings, &mut NoProgress).unwrap();
    let h = &model.info.history.history;
    let (first, best) = (
        h[0].validation_loss,
        model.info.history.best_validation_loss,
    );
    eprintln!("validation loss {first} → {best}; {}", model.info.data);
    assert!(best < 0.6 * first, "validation loss {first} → {best}");
    assert!(model.info.threshold > 0.0);
    // Jaccard on sparse simulated frames (the calibration's own summary).
    let jaccard: f64 = model.info.data.split("Jaccard ").nth(1).unwrap()[..5]
        .parse()
        .unwrap();
    assert!(jaccard > 0.6, "{}", model.info.data);

    // Save, load, same maps; a U-Net loader refuses it with a clear message.
    let dir = std::env::temp_dir().join(format!("fluorecon-ds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    model.save(&dir).unwrap();
    let again = DeepStormModel::load(&dir).unwrap();
    assert_eq!(again.info, model.info);
    let frames: Vec<f32> = (0..2 * 16 * 16).map(|i| 100.0 + (i % 7) as f32).collect();
    let cam = settings.camera.analysis_camera();
    let a = model.predict_maps(&frames, 16, 16, &cam).unwrap();
    let b = again.predict_maps(&frames, 16, 16, &cam).unwrap();
    assert_eq!(a, b);
    let e = crate::nn::load_model(&dir).unwrap_err().to_string();
    assert!(e.contains("Deep-STORM model"), "{e}");
    // Corrupt weights.
    let weights = dir.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 3]).unwrap();
    let e = DeepStormModel::load(&dir).unwrap_err().to_string();
    assert!(e.contains("corrupt or truncated"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_refused_with_a_message() {
    let settings = TrainingSettings::default();
    let model = Arc::new(DeepStormModel::untrained("t", &tiny(), &settings).unwrap());
    let opts = DeepStormOptions {
        camera: settings.camera.analysis_camera(),
        ..DeepStormOptions::default()
    };
    // NaN pixel.
    let mut r = DeepStormLocalizer::new(model.clone(), 8, 8, &opts).unwrap();
    let mut frames = vec![200.0f32; 2 * 64];
    frames[64 + 9] = f32::NAN;
    let e = r.push(&frames, &mut NoProgress).unwrap_err().to_string();
    assert!(e.contains("frame 2") && e.contains("x=1, y=1"), "{e}");
    // Partial frames, empty stack, tiny frames, bad camera.
    let e = r
        .push(&frames[..70], &mut NoProgress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("whole number"), "{e}");
    let e = deepstorm_stack(model.clone(), &[], 8, 8, &opts, &mut NoProgress).unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
    assert!(DeepStormLocalizer::new(model.clone(), 1, 1, &opts).is_err());
    let bad_cam = DeepStormOptions {
        camera: Camera {
            electrons_per_adu: 0.0,
            ..opts.camera
        },
        ..opts
    };
    assert!(DeepStormLocalizer::new(model.clone(), 8, 8, &bad_cam).is_err());
    // Data the model was not trained for: a warning, not an error.
    let other = DeepStormOptions {
        pixel_nm: 160.0,
        camera: Camera {
            em_gain: None,
            ..opts.camera
        },
        ..opts
    };
    let r = DeepStormLocalizer::new(model, 8, 8, &other).unwrap();
    let w = r.warnings();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].contains("160 nm"), "{w:?}");
}

/// An edited `model.json` (bottleneck 1e9, kernel 100001: an abort that took Fiji down) is
/// refused before the network is built; frames far outside the model's range (×1e30, all
/// below the camera offset) are refused instead of giving NaN uncertainties.
#[test]
fn edited_model_files_and_absurd_frames_are_refused() {
    let settings = TrainingSettings::default();
    let model = DeepStormModel::untrained("t", &tiny(), &settings).unwrap();
    let dir = std::env::temp_dir().join(format!("fluorecon-ds-bounds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    model.save(&dir).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("model.json")).unwrap()).unwrap();
    let edits: [(&str, serde_json::Value, &str); 6] = [
        (
            "/architecture/bottleneck",
            1_000_000_000u64.into(),
            "4096 in the bottleneck",
        ),
        ("/architecture/kernel_size", 100_001.into(), "at most 15"),
        ("/architecture/upsampling", 64.into(), "1–16"),
        ("/architecture/filters/2", 1024.into(), "million weights"),
        ("/input_scale", 0.into(), "input scale"),
        ("/threshold", (-1).into(), "threshold"),
    ];
    for (at, value, says) in edits {
        let mut edited = json.clone();
        *edited.pointer_mut(at).unwrap() = value;
        if at.ends_with("filters/2") {
            *edited.pointer_mut("/architecture/bottleneck").unwrap() = 4096.into();
            *edited.pointer_mut("/architecture/kernel_size").unwrap() = 15.into();
        }
        std::fs::write(dir.join("model.json"), edited.to_string()).unwrap();
        let e = DeepStormModel::load(&dir).unwrap_err().to_string();
        assert!(e.contains("model.json") && e.contains(says), "{at}: {e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();

    let cam = settings.camera.analysis_camera();
    let frames: Vec<f32> = (0..16 * 16).map(|i| 120.0 + (i % 7) as f32).collect();
    assert!(model.predict_maps(&frames, 16, 16, &cam).is_ok());
    let huge: Vec<f32> = frames.iter().map(|v| v * 1e30).collect();
    let e = model
        .predict_maps(&huge, 16, 16, &cam)
        .unwrap_err()
        .to_string();
    assert!(e.contains("far outside"), "{e}");
    let negative: Vec<f32> = frames.iter().map(|v| -v).collect();
    let e = model
        .predict_maps(&negative, 16, 16, &cam)
        .unwrap_err()
        .to_string();
    assert!(e.contains("below the camera offset"), "{e}");
}
