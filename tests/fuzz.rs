//! Seeded mutation fuzzing of every reader of outside files, through the real readers:
//! TIFF (`read_tiff`), U-Net `model.json` (`load_model`), Deep-STORM `model.json`
//! (`DeepStormModel::load`), `model.safetensors` headers (`load_weights_from_bytes`) and
//! localization CSVs (`read_csv`, then `render` as `fluorecon render` does).
//!
//! Each reader is fuzzed in a child process (this test binary run again on the ignored test
//! `fuzz_child`, under a 3 GiB address-space limit), so that an abort — an allocation that
//! fails, a stack overflow — is a test failure instead of the end of the test run. A panic is
//! a failure too, even one a reader catches: the child's panic hook names the input, saves
//! it under the temporary folder and exits with code 101.
//!
//! `make test` runs a bounded number of mutations (well under 60 s on 2 cores). For a longer
//! local run: `FLUORECON_FUZZ_SCALE=100 cargo test --release --test fuzz` (or `make fuzz`);
//! `FLUORECON_FUZZ_SEED` changes the seed.

mod common;

use fluorecon::io::tiff::{read_tiff, write_tiff, Hyperstack};
use fluorecon::nn::model_file::{load_weights_from_bytes, WEIGHTS_FILE};
use fluorecon::nn::{load_model, new_unet, save_model, ModelInfo, Normalization, UNetConfig};
use fluorecon::smlm::deepstorm::DeepStormModel;
use fluorecon::smlm::render::field_of_view;
use fluorecon::smlm::results::{read_csv, write_csv};
use fluorecon::smlm::{render, Localization, RenderOptions};
use fluorecon::VoxelSize;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The readers and the mutations each gets in `make test`.
const KINDS: [(&str, usize); 5] = [
    ("tiff", 3000),
    ("unet_json", 300),
    ("deepstorm_json", 120),
    ("safetensors", 1500),
    ("csv", 2000),
];

#[test]
fn fuzz_readers_never_panic_or_abort() {
    let exe = std::env::current_exe().expect("the test binary");
    let scale: usize = std::env::var("FLUORECON_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let mut failures = Vec::new();
    for (kind, n) in KINDS {
        let mut cmd = Command::new(&exe);
        cmd.args(["--exact", "fuzz_child", "--ignored", "--nocapture"])
            .env("FLUORECON_FUZZ_CHILD", kind)
            .env("FLUORECON_FUZZ_N", (n * scale).to_string());
        common::limit_address_space(&mut cmd, 3 << 30);
        let out = cmd.output().expect("the test binary runs again");
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: String = err.lines().rev().take(15).collect::<Vec<_>>().join("\n");
            failures.push(format!("{kind}: {:?}\n{tail}", out.status));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The input being read, for the panic hook: (what, bytes).
static CURRENT: Mutex<Option<(String, Vec<u8>)>> = Mutex::new(None);

fn set_current(what: String, bytes: &[u8]) {
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some((what, bytes.to_vec()));
}

#[test]
#[ignore = "run by fuzz_readers_never_panic_or_abort in a child process"]
fn fuzz_child() {
    let Ok(kind) = std::env::var("FLUORECON_FUZZ_CHILD") else {
        return;
    };
    let n: usize = std::env::var("FLUORECON_FUZZ_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let seed: u64 = std::env::var("FLUORECON_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    std::panic::set_hook(Box::new(|info| {
        let current = CURRENT.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((what, bytes)) = current {
            let saved = std::env::temp_dir().join("fluorecon-fuzz-failure.bin");
            let _ = std::fs::write(&saved, bytes);
            eprintln!(
                "PANIC on {what} (input saved to {}): {info}",
                saved.display()
            );
        } else {
            eprintln!("PANIC: {info}");
        }
        std::process::exit(101);
    }));
    let dir = std::env::temp_dir().join(format!("fluorecon-fuzz-{kind}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (ok, refused) = match kind.as_str() {
        "tiff" => fuzz_tiff(&dir, n, &mut rng),
        "unet_json" => fuzz_unet_json(&dir, n, &mut rng),
        "deepstorm_json" => fuzz_deepstorm_json(&dir, n, &mut rng),
        "safetensors" => fuzz_safetensors(&dir, n, &mut rng),
        "csv" => fuzz_csv(n, &mut rng),
        other => panic!("unknown fuzz target {other}"),
    };
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("fuzz {kind}: {n} mutations, {ok} read, {refused} refused with an error");
    // The mutations must reach both outcomes, or the fuzzing tests nothing.
    assert!(
        ok > 0 && refused > 0 && ok + refused == n,
        "{ok} read, {refused} refused"
    );
}

/// Values that break size arithmetic.
const INTERESTING: [u64; 14] = [
    0,
    1,
    2,
    7,
    255,
    0x7FFF,
    0xFFFF,
    0x1_0000,
    0x7FFF_FFFF,
    0xFFFF_FFFF,
    0x8000_0000,
    0x1000_0000,
    u64::MAX,
    0x7FFF_FFFF_FFFF_FFFF,
];

/// A random mutation of `bytes`: byte flips, an interesting 1/2/4/8-byte value (either
/// byte order), a truncation, a duplicated or deleted run; positions favour the first
/// `hot` bytes (headers).
fn mutate(bytes: &[u8], hot: usize, rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let rounds = rng.gen_range(1..=4);
    for _ in 0..rounds {
        if b.is_empty() {
            b.push(0);
        }
        let span = if rng.gen_bool(0.7) {
            hot.min(b.len())
        } else {
            b.len()
        };
        let at = rng.gen_range(0..span.max(1));
        match rng.gen_range(0..6) {
            0 => b[at] ^= 1 << rng.gen_range(0..8),
            1 => b[at] = rng.gen(),
            2 => {
                let width = [1usize, 2, 4, 8][rng.gen_range(0..4)];
                let v = INTERESTING[rng.gen_range(0..INTERESTING.len())];
                let bytes = if rng.gen_bool(0.5) {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                for k in 0..width {
                    if at + k < b.len() {
                        b[at + k] = bytes[k];
                    }
                }
            }
            3 => b.truncate(rng.gen_range(0..b.len())),
            4 => {
                let end = (at + rng.gen_range(1..64)).min(b.len());
                let run = b[at..end].to_vec();
                b.splice(at..at, run);
            }
            _ => {
                let end = (at + rng.gen_range(1..16)).min(b.len());
                b.drain(at..end);
            }
        }
    }
    b
}

/// Counts a reader's outcome: Ok → (1, 0), Err → (0, 1).
fn tally<T, E>(r: Result<T, E>, ok: &mut usize, refused: &mut usize) {
    match r {
        Ok(_) => *ok += 1,
        Err(_) => *refused += 1,
    }
}

type Encoder<'a> = tiff::encoder::TiffEncoder<std::io::Cursor<&'a mut Vec<u8>>>;

/// Valid TIFFs of each kind the reader takes: a float ImageJ hyperstack, 16-bit LZW pages,
/// 8-bit Deflate, an 8-bit page with a colour table.
fn seed_tiffs(dir: &Path) -> Vec<Vec<u8>> {
    use tiff::encoder::{colortype, compression, TiffEncoder};

    let mut seeds = Vec::new();
    let voxel = VoxelSize {
        z: 0.2,
        y: 0.1,
        x: 0.1,
    };
    let mut hs = Hyperstack::zeros(6, 5, 2, 3, 1, voxel, "micron");
    hs.data
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = i as f32);
    let p = dir.join("seed.tif");
    write_tiff(&p, &hs).unwrap();
    seeds.push(std::fs::read(&p).unwrap());
    let encode = |f: &dyn Fn(&mut Encoder)| {
        let mut buf = Vec::new();
        {
            let mut enc = TiffEncoder::new(std::io::Cursor::new(&mut buf)).unwrap();
            f(&mut enc);
        }
        buf
    };
    seeds.push(encode(&|enc| {
        for page in 0..3u16 {
            let data: Vec<u16> = (0..40u16).map(|i| i * 100 + page).collect();
            enc.write_image_with_compression::<colortype::Gray16, _>(8, 5, compression::Lzw, &data)
                .unwrap();
        }
    }));
    seeds.push(encode(&|enc| {
        let data: Vec<u8> = (0..64u8).collect();
        enc.write_image_with_compression::<colortype::Gray8, _>(
            8,
            8,
            compression::Deflate::default(),
            &data,
        )
        .unwrap();
    }));
    seeds.push(encode(&|enc| {
        let mut img = enc.new_image::<colortype::Gray8>(4, 3).unwrap();
        img.encoder()
            .write_tag(tiff::tags::Tag::PhotometricInterpretation, 3u16)
            .unwrap();
        let map: Vec<u16> = (0..768).map(|i| (i % 256 * 257) as u16).collect();
        img.encoder()
            .write_tag(tiff::tags::Tag::ColorMap, &map[..])
            .unwrap();
        img.write_data(&[7u8; 12]).unwrap();
    }));
    seeds
}

fn fuzz_tiff(dir: &Path, n: usize, rng: &mut ChaCha8Rng) -> (usize, usize) {
    let seeds = seed_tiffs(dir);
    for s in &seeds {
        let p = dir.join("check.tif");
        std::fs::write(&p, s).unwrap();
        read_tiff(&p).expect("every seed TIFF is valid");
    }
    let (mut ok, mut refused) = (0, 0);
    let p = dir.join("fuzz.tif");
    for i in 0..n {
        let seed = &seeds[rng.gen_range(0..seeds.len())];
        let bytes = mutate(seed, 400, rng);
        set_current(format!("TIFF mutation {i}"), &bytes);
        std::fs::write(&p, &bytes).unwrap();
        tally(read_tiff(&p), &mut ok, &mut refused);
    }
    (ok, refused)
}

/// A mutation of a JSON document: a number, string or field of it replaced by an
/// interesting value or removed, or (one time in five) its text mutated as bytes.
fn mutate_json(json: &serde_json::Value, rng: &mut ChaCha8Rng) -> Vec<u8> {
    if rng.gen_range(0..5) == 0 {
        return mutate(json.to_string().as_bytes(), usize::MAX, rng);
    }
    let mut v = json.clone();
    let mut paths = Vec::new();
    collect_leaves(&v, &mut Vec::new(), &mut paths);
    let path = &paths[rng.gen_range(0..paths.len())];
    let values = [
        serde_json::json!(0),
        serde_json::json!(-1),
        serde_json::json!(1e9),
        serde_json::json!(1_000_000_000_000u64),
        serde_json::json!(u64::MAX),
        serde_json::json!(1e308),
        serde_json::json!(-1e308),
        serde_json::json!(1e-300),
        serde_json::json!(0.5),
        serde_json::json!(100001),
        serde_json::json!("x"),
        serde_json::json!([]),
        serde_json::json!([1e9, 1e9, 1e9]),
        serde_json::json!(null),
        serde_json::json!({}),
    ];
    let new = values[rng.gen_range(0..values.len())].clone();
    let mut at = &mut v;
    for (k, key) in path.iter().enumerate() {
        let last = k + 1 == path.len();
        at = match (at, key) {
            (serde_json::Value::Object(m), Key::Field(f)) => {
                if last && rng.gen_range(0..6) == 0 {
                    m.remove(f);
                    return v.to_string().into_bytes();
                }
                m.get_mut(f).expect("collected path")
            }
            (serde_json::Value::Array(a), Key::Index(i)) => &mut a[*i],
            _ => unreachable!("collected path"),
        };
    }
    *at = new;
    v.to_string().into_bytes()
}

#[derive(Clone)]
enum Key {
    Field(String),
    Index(usize),
}

fn collect_leaves(v: &serde_json::Value, at: &mut Vec<Key>, out: &mut Vec<Vec<Key>>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, c) in m {
                at.push(Key::Field(k.clone()));
                collect_leaves(c, at, out);
                at.pop();
            }
        }
        serde_json::Value::Array(a) if !a.is_empty() && a.len() <= 16 => {
            for (i, c) in a.iter().enumerate() {
                at.push(Key::Index(i));
                collect_leaves(c, at, out);
                at.pop();
            }
        }
        _ => out.push(at.clone()),
    }
}

/// A tiny U-Net model folder in `dir`.
fn tiny_unet_model(dir: &Path) -> PathBuf {
    let config = UNetConfig {
        depth: 1,
        base_filters: 4,
        kernel_size: 3,
        batch_norm: true,
        ..Default::default()
    };
    let (vars, _) = new_unet(&config, 3).unwrap();
    let info = ModelInfo::new(
        "n2v",
        "tiny",
        config,
        Normalization::MeanStd {
            mean: 20.0,
            std: 4.0,
        },
    );
    let m = dir.join("model");
    save_model(&m, &vars, &info).unwrap();
    m
}

fn fuzz_unet_json(dir: &Path, n: usize, rng: &mut ChaCha8Rng) -> (usize, usize) {
    let m = tiny_unet_model(dir);
    load_model(&m).expect("the seed model loads");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.join("model.json")).unwrap()).unwrap();
    let (mut ok, mut refused) = (0, 0);
    for i in 0..n {
        let bytes = mutate_json(&json, rng);
        set_current(format!("U-Net model.json mutation {i}"), &bytes);
        std::fs::write(m.join("model.json"), &bytes).unwrap();
        tally(load_model(&m), &mut ok, &mut refused);
    }
    (ok, refused)
}

fn fuzz_deepstorm_json(dir: &Path, n: usize, rng: &mut ChaCha8Rng) -> (usize, usize) {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/deepstorm-2d-emccd-100nm");
    let m = dir.join("deepstorm");
    std::fs::create_dir_all(&m).unwrap();
    for f in ["model.json", WEIGHTS_FILE] {
        std::fs::copy(shipped.join(f), m.join(f)).unwrap();
    }
    DeepStormModel::load(&m).expect("the shipped model loads");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.join("model.json")).unwrap()).unwrap();
    // Only the parts that size things: the architecture, the scales, the training settings.
    let (mut ok, mut refused) = (0, 0);
    for i in 0..n {
        let mut small = json.clone();
        if let Some(h) = small.get_mut("history") {
            *h = serde_json::json!({
                "history": [],
                "best_epoch": 1,
                "best_validation_loss": 0.1,
                "seconds": 1.0
            });
        }
        let bytes = mutate_json(&small, rng);
        set_current(format!("Deep-STORM model.json mutation {i}"), &bytes);
        std::fs::write(m.join("model.json"), &bytes).unwrap();
        tally(DeepStormModel::load(&m), &mut ok, &mut refused);
    }
    (ok, refused)
}

fn fuzz_safetensors(dir: &Path, n: usize, rng: &mut ChaCha8Rng) -> (usize, usize) {
    let m = tiny_unet_model(dir);
    let model = load_model(&m).unwrap();
    let bytes = std::fs::read(m.join(WEIGHTS_FILE)).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let data = &bytes[8 + header_len..];
    let path = m.join(WEIGHTS_FILE);
    let (mut ok, mut refused) = (0, 0);
    for i in 0..n {
        let mutated = if rng.gen_bool(0.5) {
            // The header's values (shapes, offsets, dtypes) changed, the length kept right.
            let h = mutate_json(&header, rng);
            let mut b = (h.len() as u64).to_le_bytes().to_vec();
            b.extend_from_slice(&h);
            b.extend_from_slice(data);
            b
        } else {
            mutate(&bytes, 8 + header_len, rng)
        };
        set_current(format!("safetensors mutation {i}"), &mutated);
        tally(
            load_weights_from_bytes(&mutated, &path, &model.vars),
            &mut ok,
            &mut refused,
        );
    }
    (ok, refused)
}

fn fuzz_csv(n: usize, rng: &mut ChaCha8Rng) -> (usize, usize) {
    let locs: Vec<Localization> = (0..20)
        .map(|k| Localization {
            frame: k + 1,
            x_nm: 100.0 + 250.0 * k as f32,
            y_nm: 3000.0 - 120.0 * k as f32,
            sigma_nm: 120.0,
            photons: 800.0,
            background: 10.0,
            bkgstd: 3.0,
            uncertainty_nm: 12.0,
        })
        .collect();
    let mut text = Vec::new();
    write_csv(&mut text, &locs).unwrap();
    let text = String::from_utf8(text).unwrap();
    let fields = [
        "nan",
        "inf",
        "-inf",
        "1e9",
        "-1e9",
        "1e38",
        "3e38",
        "1e-45",
        "-0",
        "",
        "abc",
        "0",
        "-5",
        "4294967296",
        "1e400",
        "\"",
    ];
    let (mut ok, mut refused) = (0, 0);
    for i in 0..n {
        let bytes = if rng.gen_bool(0.6) {
            // A field (or several) of a line replaced.
            let mut lines: Vec<Vec<String>> = text
                .lines()
                .map(|l| l.split(',').map(str::to_string).collect())
                .collect();
            for _ in 0..rng.gen_range(1..4) {
                let r = rng.gen_range(0..lines.len());
                let c = rng.gen_range(0..lines[r].len());
                lines[r][c] = fields[rng.gen_range(0..fields.len())].to_string();
            }
            lines
                .iter()
                .map(|l| l.join(","))
                .collect::<Vec<_>>()
                .join("\n")
                .into_bytes()
        } else {
            mutate(text.as_bytes(), 300, rng)
        };
        set_current(format!("CSV mutation {i}"), &bytes);
        let r = read_csv(std::io::Cursor::new(&bytes), "fuzz.csv").and_then(|locs| {
            // Rendered as `fluorecon render` does, on fields small enough to be quick.
            let (w, h) = field_of_view(&locs, 100.0);
            if w <= 128 && h <= 128 {
                let opts = RenderOptions {
                    width_px: w,
                    height_px: h,
                    magnification: 2.0,
                    ..RenderOptions::default()
                };
                render(&locs, &opts)?;
            }
            Ok(())
        });
        tally(r, &mut ok, &mut refused);
    }
    (ok, refused)
}
