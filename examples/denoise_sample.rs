//! Writes the denoising test sample of `tests/denoise.rs` at any size: beads and filaments
//! (`synthetic::poisson_gaussian`), Poisson shot noise + Gaussian read noise, seeded, as
//! `noisy.tif` and `truth.tif` (32-bit, the noise-free image in photons) in a folder. Used
//! by `bench/careamics_bench.py`.
//!
//! cargo run --release --example denoise_sample -- DIR [NY NX PEAK BACKGROUND READ SEED]
//! (defaults: 512 512 20 5 2 11, the parameters of `tests/denoise.rs`)

use fluorecon::io::tiff::{write_tiff, Hyperstack};
use fluorecon::synthetic::poisson_gaussian;
use fluorecon::{Volume, VoxelSize};
use std::path::PathBuf;

fn main() -> fluorecon::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: denoise_sample DIR [NY NX PEAK BACKGROUND READ SEED]");
        std::process::exit(2);
    };
    let num = |i: usize, default: f64| -> f64 {
        args.get(i)
            .map(|s| s.parse().expect("a number"))
            .unwrap_or(default)
    };
    let (ny, nx) = (num(1, 512.0) as usize, num(2, 512.0) as usize);
    let (peak, background, read) = (num(3, 20.0) as f32, num(4, 5.0) as f32, num(5, 2.0) as f32);
    let seed = num(6, 11.0) as u64;
    let (truth, noisy) = poisson_gaussian((1, ny, nx), peak, background, read, seed)?;
    std::fs::create_dir_all(&dir).map_err(|e| fluorecon::Error::File {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    let voxel = VoxelSize {
        z: 1.0,
        y: 0.1,
        x: 0.1,
    };
    for (name, data) in [("noisy.tif", noisy), ("truth.tif", truth)] {
        write_tiff(
            &dir.join(name),
            &Hyperstack::from_volume(&Volume::new(data, voxel)),
        )?;
    }
    eprintln!(
        "{nx}×{ny} pixels, peak {peak} + background {background} photons, read noise \
         {read}, seed {seed} → {}/{{noisy,truth}}.tif",
        dir.display()
    );
    Ok(())
}
