//! End-to-end tests of the `fluorecon` command line: the built binary on tiny data in a
//! temporary folder.

use fluorecon::io::tiff::{read_tiff, write_tiff, Hyperstack};
use fluorecon::VoxelSize;
use std::path::Path;
use std::process::Output;

mod common;
use common::{fluorecon, TempDir};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and expects success.
fn ok(args: &[&str]) -> Output {
    let o = fluorecon(args);
    assert!(
        o.status.success(),
        "fluorecon {args:?} failed ({:?}):\n{}",
        o.status.code(),
        stderr(&o)
    );
    o
}

/// Runs, expects exit code `code` and returns stderr.
fn fails(code: i32, args: &[&str]) -> String {
    let o = fluorecon(args);
    assert_eq!(
        o.status.code(),
        Some(code),
        "fluorecon {args:?}:\n{}",
        stderr(&o)
    );
    stderr(&o)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs()
}

/// A calibrated 2-channel, 4-slice, 2-frame hyperstack of blurred spots, different in every
/// channel and frame.
fn spots_hyperstack() -> Hyperstack {
    let voxel = VoxelSize {
        z: 0.2,
        y: 0.1,
        x: 0.1,
    };
    let (w, h) = (24, 20);
    let mut hs = Hyperstack::zeros(w, h, 2, 4, 2, voxel, "micron");
    hs.frame_interval = Some(3.0);
    for t in 0..2 {
        for z in 0..4 {
            for c in 0..2 {
                let plane = hs.plane_index(c, z, t) * w * h;
                let (cx, cy) = (6.0 + 8.0 * c as f32 + 3.0 * t as f32, 10.0);
                for y in 0..h {
                    for x in 0..w {
                        let r2 = (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2);
                        let dz = z as f32 - 1.5;
                        hs.data[plane + y * w + x] = 5.0 + 500.0 * (-(r2 + dz * dz) / 4.0).exp();
                    }
                }
            }
        }
    }
    hs
}

#[test]
fn info_prints_version_features_and_devices() {
    let o = ok(&["info"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(fluorecon::VERSION), "{out}");
    assert!(out.contains("cpu"), "{out}");
    assert!(out.contains("CPU:"), "{out}");
    let flavour = if cfg!(feature = "cuda") {
        "cuda"
    } else {
        "cpu"
    };
    assert!(
        out.contains(&format!("\nLibrary flavour: {flavour}\n")),
        "{out}"
    );
    assert!(out.contains("\nCUDA driver: "), "{out}");
    let o = ok(&["--threads", "1", "info"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("threads: 1"));
}

#[test]
fn psf_writes_a_normalised_calibrated_psf() {
    let dir = TempDir::new("psf");
    for model in ["gaussian", "born-wolf"] {
        let out = dir.path(&format!("{model}.tif"));
        ok(&[
            "psf",
            "--model",
            model,
            "--na",
            "1.4",
            "--wavelength",
            "520",
            "--pixel-size",
            "100",
            "--z-step",
            "200",
            "--size",
            "15,13,9",
            "-o",
            &out,
        ]);
        let p = read_tiff(Path::new(&out)).unwrap();
        assert_eq!(
            (p.width, p.height, p.slices, p.channels, p.frames),
            (15, 13, 9, 1, 1)
        );
        let sum: f64 = p.data.iter().map(|&v| v as f64).sum();
        assert!((sum - 1.0).abs() < 1e-3, "{model}: sum {sum}");
        assert!(p.data.iter().all(|&v| v >= 0.0));
        assert_eq!(p.unit, "micron");
        assert!(
            close(p.voxel.x, 0.1) && close(p.voxel.z, 0.2),
            "{:?}",
            p.voxel
        );
        // The peak is the centre pixel.
        let peak = p.data.iter().cloned().fold(f32::MIN, f32::max);
        assert_eq!(p.data[(4 * 13 + 6) * 15 + 7], peak);
    }
    let e = fails(
        1,
        &[
            "psf",
            "--model",
            "gaussian",
            "--na",
            "1.4",
            "--wavelength",
            "520",
            "--pixel-size",
            "100",
            "--z-step",
            "200",
            "--size",
            "16,16,9",
            "-o",
            &dir.path("even.tif"),
        ],
    );
    assert!(e.contains("odd"), "{e}");
}

#[test]
fn simulate_then_deconvolve_keeps_dims_and_calibration() {
    let dir = TempDir::new("sim");
    let data = dir.path("data");
    ok(&[
        "simulate",
        "--shape",
        "8x32x32",
        "--psf-size",
        "9,9,5",
        "--pixel-size",
        "100",
        "--z-step",
        "250",
        "--seed",
        "3",
        "-o",
        &data,
    ]);
    let blurred_path = format!("{data}/blurred.tif");
    let blurred = read_tiff(Path::new(&blurred_path)).unwrap();
    assert_eq!((blurred.width, blurred.height, blurred.slices), (32, 32, 8));
    assert!(close(blurred.voxel.x, 0.1) && close(blurred.voxel.z, 0.25));
    for f in ["truth.tif", "psf.tif"] {
        read_tiff(&Path::new(&data).join(f)).unwrap();
    }

    let out = dir.path("out.tif");
    let o = ok(&[
        "deconvolve",
        &blurred_path,
        "--psf",
        &format!("{data}/psf.tif"),
        "-n",
        "3",
        "-o",
        &out,
    ]);
    let log = stderr(&o);
    assert!(log.contains("3 iterations"), "{log}");
    // --device cuda: on the GPU when there is one, else the reason and the CPU's result.
    let out_cuda = dir.path("out-cuda.tif");
    let psf_path = format!("{data}/psf.tif");
    let args = ["deconvolve", &blurred_path, "--psf", &psf_path, "-n", "3"];
    let o = ok(&[&args[..], &["--device", "cuda", "-o", &out_cuda]].concat());
    let log = stderr(&o);
    let on_gpu = log.contains("RL on CUDA device 0 (");
    assert!(!on_gpu || cfg!(feature = "cuda"), "{log}");
    if !on_gpu {
        assert!(
            log.contains("Warning: CUDA:0 was requested but cannot be used ("),
            "{log}"
        );
        assert!(log.contains("Richardson–Lucy on CPU ("), "{log}");
        let a = read_tiff(Path::new(&out_cuda)).unwrap();
        assert_eq!(a.data, read_tiff(Path::new(&out)).unwrap().data);
    }
    let r = read_tiff(Path::new(&out)).unwrap();
    assert_eq!(
        (
            r.width,
            r.height,
            r.channels,
            r.slices,
            r.frames,
            r.bit_depth
        ),
        (32, 32, 1, 8, 1, 32)
    );
    assert_eq!(r.unit, "micron");
    assert_eq!(r.voxel, blurred.voxel);
    assert!(r.data.iter().all(|v| v.is_finite() && *v >= 0.0));
    assert_ne!(r.data, blurred.data);

    // A model PSF takes pixel size and z step from the file's calibration.
    let out2 = dir.path("out-model.tif");
    ok(&[
        "deconvolve",
        &blurred_path,
        "--psf-model",
        "born-wolf",
        "--na",
        "1.4",
        "--wavelength",
        "520",
        "-n",
        "2",
        "--accelerate",
        "--boundary",
        "circulant",
        "--device",
        "cpu",
        "--threads",
        "1",
        "-o",
        &out2,
    ]);
    assert_eq!(read_tiff(Path::new(&out2)).unwrap().slices, 8);
}

#[test]
fn deconvolves_every_channel_and_frame_of_a_hyperstack() {
    let dir = TempDir::new("hyper");
    let input = dir.path("in.tif");
    let hs = spots_hyperstack();
    write_tiff(Path::new(&input), &hs).unwrap();
    let out = dir.path("out.tif");
    ok(&[
        "deconvolve",
        &input,
        "--psf-model",
        "gaussian",
        "--na",
        "1.2",
        "--wavelength",
        "600",
        "--immersion",
        "1.33",
        "-n",
        "3",
        "--tv",
        "0.002",
        "-o",
        &out,
    ]);
    let r = read_tiff(Path::new(&out)).unwrap();
    assert_eq!(
        (r.width, r.height, r.channels, r.slices, r.frames),
        (24, 20, 2, 4, 2)
    );
    assert_eq!(r.voxel, hs.voxel);
    assert_eq!(r.frame_interval, Some(3.0));
    // Every part was processed from its own input: the spots stay where they were.
    for t in 0..2 {
        for c in 0..2 {
            let v = r.volume(c, t);
            let (cx, cy) = (6 + 8 * c + 3 * t, 10);
            let at_spot = v.data[[1, cy, cx]];
            assert!(at_spot > v.data[[1, cy, (cx + 8) % 24]], "c{c} t{t}");
        }
    }
}

#[test]
fn bad_inputs_exit_1_with_a_clear_message() {
    let dir = TempDir::new("bad");
    let out = dir.path("out.tif");
    let model = [
        "--psf-model",
        "gaussian",
        "--na",
        "1.4",
        "--wavelength",
        "520",
    ];
    let run = |input: &str, extra: &[&str]| {
        let mut args = vec!["deconvolve", input, "-o", &out];
        args.extend_from_slice(extra);
        fails(1, &args)
    };

    let e = run(&dir.path("missing.tif"), &model);
    assert!(
        e.contains("fluorecon: error:") && e.contains("missing.tif"),
        "{e}"
    );
    assert!(e.contains("not found"), "{e}");

    let rgb = dir.path("rgb.tif");
    {
        let f = std::fs::File::create(&rgb).unwrap();
        let mut enc = tiff::encoder::TiffEncoder::new(f).unwrap();
        enc.write_image::<tiff::encoder::colortype::RGB8>(4, 4, &[9u8; 48])
            .unwrap();
    }
    let e = run(&rgb, &model);
    assert!(e.contains("RGB"), "{e}");

    let nan = dir.path("nan.tif");
    let mut hs = spots_hyperstack();
    hs.data[5] = f32::NAN;
    write_tiff(Path::new(&nan), &hs).unwrap();
    let e = run(&nan, &model);
    assert!(e.contains("not numbers"), "{e}");

    let good = dir.path("good.tif");
    write_tiff(Path::new(&good), &spots_hyperstack()).unwrap();
    let mut zero = model.to_vec();
    zero.extend(["-n", "0"]);
    let e = run(&good, &zero);
    assert!(e.contains("--iterations"), "{e}");

    let mut both = model.to_vec();
    both.extend(["--psf", &good]);
    let e = run(&good, &both);
    assert!(e.contains("not both"), "{e}");

    let e = run(&good, &[]);
    assert!(e.contains("--psf"), "{e}");

    let e = run(&good, &["--psf-model", "born-wolf", "--wavelength", "520"]);
    assert!(e.contains("--na"), "{e}");

    let mut raw = spots_hyperstack();
    raw.unit = "pixel".into();
    raw.voxel = VoxelSize::default();
    let uncal = dir.path("uncalibrated.tif");
    write_tiff(Path::new(&uncal), &raw).unwrap();
    let e = run(&uncal, &model);
    assert!(e.contains("--pixel-size"), "{e}");

    assert!(!Path::new(&out).exists(), "no output after a failure");
}

#[test]
fn usage_errors_exit_2() {
    fails(2, &["deconvolve"]);
    fails(2, &["frobnicate"]);
    fails(2, &["simulate", "--shape", "8xAx3", "-o", "x"]);
    let e = fails(
        2,
        &["deconvolve", "a.tif", "-o", "b.tif", "--device", "tpu"],
    );
    assert!(e.contains("tpu"), "{e}");
    let e = fails(
        2,
        &["deconvolve", "a.tif", "-o", "b.tif", "--boundary", "mirror"],
    );
    assert!(e.contains("non-circulant"), "{e}");
}

/// Columns `cols` of every data row of a CSV file.
fn csv_columns(path: &str, cols: &[usize]) -> Vec<Vec<f64>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            cols.iter().map(|&c| f[c].parse().unwrap()).collect()
        })
        .collect()
}

#[test]
fn simulate_sim_then_sim_recovers_the_pattern_and_halves_the_pixels() {
    let dir = TempDir::new("sim2d");
    ok(&[
        "simulate-sim",
        "--size",
        "256",
        "--seed",
        "3",
        "-o",
        &dir.path(""),
    ]);
    let o = ok(&[
        "sim",
        &dir.path("raw.tif"),
        "--na",
        "1.2",
        "--wavelength",
        "525",
        "--background",
        "100",
        "-o",
        &dir.path("sim.tif"),
        "--widefield",
        &dir.path("wf.tif"),
        "--wiener-widefield",
        &dir.path("wwf.tif"),
        "--params",
        &dir.path("params.csv"),
    ]);
    assert!(stderr(&o).contains("modulation"), "{}", stderr(&o));
    let sim = read_tiff(Path::new(&dir.path("sim.tif"))).unwrap();
    assert_eq!((sim.width, sim.height, sim.slices), (512, 512, 1));
    assert!(close(sim.voxel.x, 0.04) && sim.is_calibrated_in_microns());
    for f in ["wf.tif", "wwf.tif"] {
        let h = read_tiff(Path::new(&dir.path(f))).unwrap();
        assert_eq!((h.width, h.height), (512, 512));
    }
    // k0 (px) estimated vs true, per angle.
    let est = csv_columns(&dir.path("params.csv"), &[3, 4, 8]);
    let truth = csv_columns(&dir.path("pattern.csv"), &[2, 3, 6]);
    for (e, t) in est.iter().zip(&truth) {
        let dk = (e[0] - t[0]).hypot(e[1] - t[1]);
        let dphi = ((e[2] - t[2]) + std::f64::consts::PI).rem_euclid(2.0 * std::f64::consts::PI)
            - std::f64::consts::PI;
        assert!(dk < 0.05 && dphi.abs() < 0.1, "{e:?} vs {t:?}");
    }

    // 8 frames for 3 × 3: a clear error, exit code 1, no output file.
    let raw = read_tiff(Path::new(&dir.path("raw.tif"))).unwrap();
    let mut eight = raw.clone();
    eight.slices = 8;
    eight.data.truncate(8 * 256 * 256);
    write_tiff(Path::new(&dir.path("eight.tif")), &eight).unwrap();
    let err = fails(
        1,
        &[
            "sim",
            &dir.path("eight.tif"),
            "--na",
            "1.2",
            "--wavelength",
            "525",
            "-o",
            &dir.path("bad.tif"),
        ],
    );
    assert!(
        err.contains("8 frames") && err.contains("multiple of 9"),
        "{err}"
    );
    assert!(!Path::new(&dir.path("bad.tif")).exists());
}
