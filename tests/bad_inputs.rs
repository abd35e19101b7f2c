//! The command line on hostile input (issue 16): sizes from files and options that once
//! aborted the process, outputs that once replaced an input. Each case runs the built
//! `fluorecon` in a child process, some under an address-space limit as a container or a
//! SLURM job would impose, and must end with exit code 1 and a clear message: never a
//! signal (an abort), never panic text, never a lost input.

use fluorecon::io::tiff::{write_tiff, Hyperstack};
use fluorecon::VoxelSize;
use std::process::Output;

mod common;
use common::TempDir;

/// Runs the CLI with `args`, under an address-space limit of `limit` bytes when given.
fn run(args: &[&str], limit: Option<u64>) -> Output {
    let mut cmd = common::cli();
    cmd.args(args);
    if let Some(bytes) = limit {
        common::limit_address_space(&mut cmd, bytes);
    }
    cmd.output().expect("the fluorecon binary runs")
}

/// Expects a clean failure (exit code 1, no panic text) whose message contains `says`.
fn refused(args: &[&str], limit: Option<u64>, says: &str) -> String {
    let o = run(args, limit);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(1),
        "fluorecon {args:?} ({:?}):\n{err}",
        o.status
    );
    assert!(
        !err.contains("panicked") && !err.contains("memory allocation"),
        "{err}"
    );
    assert!(
        err.contains(says),
        "fluorecon {args:?}: expected \"{says}\" in:\n{err}"
    );
    err
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// A classic little-endian TIFF of `pages` 16-bit pages of `w`×`h` that all point at one
/// strip: small on disk, `pages` planes in memory.
fn shared_strip_tiff(pages: usize, w: u32, h: u32) -> Vec<u8> {
    let strip_len = w * h * 2;
    let ifd_len = 2 + 8 * 12 + 4;
    let strip_at = 8 + pages * ifd_len;
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    for k in 0..pages {
        let next = if k + 1 < pages {
            (8 + (k + 1) * ifd_len) as u32
        } else {
            0
        };
        out.extend_from_slice(&8u16.to_le_bytes());
        let entries: [(u16, u16, u32); 8] = [
            (256, 4, w),
            (257, 4, h),
            (258, 3, 16),
            (259, 3, 1),
            (262, 3, 1),
            (273, 4, strip_at as u32),
            (278, 4, h),
            (279, 4, strip_len),
        ];
        for (tag, kind, value) in entries {
            out.extend_from_slice(&tag.to_le_bytes());
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.extend_from_slice(&next.to_le_bytes());
    }
    out.extend((0..strip_len).map(|i| (i % 251) as u8));
    out
}

/// `simulate --shape 10000x100000x100000` asked for 376 TiB and aborted.
#[test]
fn impossible_simulation_sizes_are_refused() {
    let dir = TempDir::new("bad-simulate");
    let out = dir.path("sim");
    refused(
        &["simulate", "--shape", "10000x100000x100000", "-o", &out],
        None,
        "not enough memory",
    );
    refused(
        &["simulate-smlm", "--frames", "1000000000", "-o", &out],
        None,
        "not enough memory",
    );
    refused(
        &["simulate-sim", "--size", "1000000", "-o", &out],
        None,
        "not enough memory",
    );
}

/// 3000 pages sharing one strip (750 KiB on disk, 750 MiB of planes) aborted `deconvolve`
/// under a memory limit; now it is reported as low memory.
#[test]
fn many_pages_sharing_a_strip_are_low_memory_not_an_abort() {
    let dir = TempDir::new("bad-pages");
    let input = dir.path("pages.tif");
    std::fs::write(&input, shared_strip_tiff(3000, 256, 256)).unwrap();
    let out = dir.path("out.tif");
    refused(
        &[
            "deconvolve",
            &input,
            "-o",
            &out,
            "--psf-model",
            "gaussian",
            "--na",
            "1.4",
            "--wavelength",
            "520",
            "--pixel-size",
            "100",
            "--z-step",
            "200",
            "-n",
            "2",
        ],
        Some(600 << 20),
        "not enough memory",
    );
    assert!(!std::path::Path::new(&out).exists());
}

/// `n2v denoise --batch 100000` aborted under a 6 GiB limit.
#[test]
fn a_training_batch_that_cannot_fit_is_refused() {
    let dir = TempDir::new("bad-batch");
    let input = dir.path("noisy.tif");
    let mut hs = Hyperstack::zeros(64, 64, 1, 1, 1, VoxelSize::default(), "pixel");
    hs.data
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = 10.0 + (i * 7919 % 13) as f32);
    write_tiff(std::path::Path::new(&input), &hs).unwrap();
    refused(
        &[
            "n2v",
            "denoise",
            &input,
            "-o",
            &dir.path("o.tif"),
            "--batch",
            "100000",
            "--epochs",
            "1",
            "--steps",
            "1",
            "--patch",
            "32",
            "--depth",
            "1",
            "--filters",
            "4",
        ],
        Some(2 << 30),
        "use a smaller batch",
    );
}

/// `-o` naming the input (directly or through `..`), `--psf`, `--widefield` equal to the input
/// or the output, a read-only output: each once replaced a file without a word.
#[test]
fn outputs_never_replace_an_input_or_a_read_only_file() {
    let dir = TempDir::new("bad-outputs");
    let input = dir.path("cells.tif");
    let mut hs = Hyperstack::zeros(16, 16, 1, 3, 1, VoxelSize::default(), "pixel");
    hs.data
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = 1.0 + (i % 5) as f32);
    write_tiff(std::path::Path::new(&input), &hs).unwrap();
    let psf = dir.path("psf.tif");
    std::fs::copy(&input, &psf).unwrap();
    let before = std::fs::read(&input).unwrap();
    let model = [
        "--psf-model",
        "gaussian",
        "--na",
        "1.4",
        "--wavelength",
        "520",
        "--pixel-size",
        "100",
        "--z-step",
        "200",
        "-n",
        "2",
    ];
    let deconvolve = |out: &str, extra: &[&str]| -> Vec<String> {
        let mut args = vec![
            "deconvolve".to_string(),
            input.clone(),
            "-o".into(),
            out.into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    refused(&strs(&deconvolve(&input, &model)), None, "is the input");
    let dotted = format!(
        "{}/../{}/cells.tif",
        dir.0.display(),
        dir.0.file_name().unwrap().to_string_lossy()
    );
    refused(&strs(&deconvolve(&dotted, &model)), None, "is the input");
    refused(
        &strs(&deconvolve(&psf, &["--psf", &psf, "-n", "2"])),
        None,
        "is the input",
    );
    refused(&["localize", &input, "-o", &input], None, "is the input");
    refused(
        &[
            "sim",
            &input,
            "--na",
            "1.2",
            "--wavelength",
            "525",
            "-o",
            &dir.path("sim.tif"),
            "--widefield",
            &input,
        ],
        None,
        "is the input",
    );
    refused(
        &[
            "sim",
            &input,
            "--na",
            "1.2",
            "--wavelength",
            "525",
            "-o",
            &dir.path("sim.tif"),
            "--widefield",
            &dir.path("sim.tif"),
        ],
        None,
        "same file",
    );
    let ro = dir.path("ro.tif");
    std::fs::write(&ro, b"keep").unwrap();
    let mut perm = std::fs::metadata(&ro).unwrap().permissions();
    perm.set_readonly(true);
    std::fs::set_permissions(&ro, perm).unwrap();
    refused(&strs(&deconvolve(&ro, &model)), None, "read-only");
    assert_eq!(std::fs::read(&ro).unwrap(), b"keep");
    assert_eq!(std::fs::read(&input).unwrap(), before);
    // A fresh output still works.
    let o = run(&strs(&deconvolve(&dir.path("out.tif"), &model)), None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A localization with an uncertainty of 1e9 nm made the Gaussian kernel 6·10⁸ pixels wide
/// (an abort in `render`, and in Fiji); it is drawn with the largest σ and named in a warning.
#[test]
fn huge_uncertainties_render_with_a_warning() {
    let dir = TempDir::new("bad-render");
    let csv = dir.path("locs.csv");
    std::fs::write(
        &csv,
        "\"frame\",\"x [nm]\",\"y [nm]\",\"sigma [nm]\",\"intensity [photon]\",\"offset [photon]\",\"bkgstd [photon]\",\"uncertainty [nm]\"\n\
         1,1000,1000,120,500,10,3,1e9\n2,2000,2000,120,500,10,3,10\n",
    )
    .unwrap();
    let out = dir.path("render.tif");
    let o = run(&["render", &csv, "-o", &out], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("1 localization(s) have an uncertainty above"),
        "{err}"
    );
    let img = fluorecon::io::tiff::read_tiff(std::path::Path::new(&out)).unwrap();
    assert!(img.data.iter().all(|v| v.is_finite()));
    let sum: f64 = img.data.iter().map(|&v| v as f64).sum();
    // The sharp one adds 1; the clamped one adds what of it falls inside the field.
    assert!(sum > 1.0 && sum <= 2.0 + 1e-3, "sum {sum}");
}

/// Options and values that were accepted without a word or refused with a misleading
/// message: `sim --taper 100000` (an almost empty image), raw SIM data ×1e30 ("no stripe
/// pattern", an overflow), `--pixel-size 1` ("between 1 and 10000 (got 1)"), a negative
/// uncertainty in a CSV, `deepstorm train --qe 0`.
#[test]
fn absurd_options_and_values_are_named() {
    let dir = TempDir::new("bad-options");
    let sim_dir = dir.path("sim");
    let o = run(&["simulate-sim", "--size", "64", "-o", &sim_dir], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let raw = format!("{sim_dir}/raw.tif");
    let out = dir.path("o.tif");
    let sim = |input: &str, pixel: &str, extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "sim",
            input,
            "-o",
            &out,
            "--na",
            "1.2",
            "--wavelength",
            "525",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(["--pixel-size".to_string(), pixel.to_string()]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    refused(
        &strs(&sim(&raw, "80", &["--taper", "100000"])),
        None,
        "edge taper (100000 pixels)",
    );
    let mut hs = fluorecon::io::tiff::read_tiff(std::path::Path::new(&raw)).unwrap();
    hs.data.iter_mut().for_each(|v| *v *= 1e30);
    let huge = dir.path("huge.tif");
    write_tiff(std::path::Path::new(&huge), &hs).unwrap();
    refused(
        &strs(&sim(&huge, "80", &[])),
        None,
        "too large for the single-precision",
    );
    refused(
        &strs(&sim(&raw, "1", &[])),
        None,
        "more than 1 and less than 10000 (got 1)",
    );

    let csv = dir.path("neg.csv");
    std::fs::write(
        &csv,
        "frame,x [nm],y [nm],uncertainty [nm]\n1,1000,1000,-5\n2,2000,2000,10\n",
    )
    .unwrap();
    refused(
        &["render", &csv, "-o", &out],
        None,
        "line 2: -5 in column \"uncertainty [nm]\" is negative",
    );
    refused(
        &[
            "deepstorm",
            "train",
            "-o",
            &dir.path("m"),
            "--qe",
            "0",
            "--epochs",
            "1",
            "--steps",
            "1",
        ],
        None,
        "quantum efficiency",
    );
}
