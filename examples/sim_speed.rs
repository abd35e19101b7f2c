//! In-process speed of 2D SIM reconstruction, parameter estimation included, on a raw TIFF
//! already read into memory (the like-for-like counterpart of timing a Python tool on a numpy
//! array): `cargo run --release --example sim_speed -- RAW.tif NA WAVELENGTH_NM BACKGROUND
//! WIENER [REPEATS]`. Prints the median and the fastest time in ms.

use fluorecon::io::tiff::read_tiff;
use fluorecon::sim::{reconstruct, SimOptics, SimOptions};
use fluorecon::NoProgress;
use std::time::Instant;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 6 {
        eprintln!("usage: sim_speed RAW.tif NA WAVELENGTH_NM BACKGROUND WIENER [REPEATS]");
        std::process::exit(2);
    }
    let num = |i: usize| a[i].parse::<f64>().expect("a number");
    let raw = read_tiff(std::path::Path::new(&a[1]))
        .expect("a TIFF")
        .volume(0, 0);
    let optics = SimOptics {
        na: num(2),
        wavelength_nm: num(3),
        pixel_size_nm: raw.voxel.x * 1000.0,
    };
    let opts = SimOptions {
        background: num(4) as f32,
        wiener: num(5),
        ..SimOptions::default()
    };
    let repeats = a.get(6).map_or(7, |r| r.parse().expect("a count"));
    reconstruct(&raw, &optics, &opts, &mut NoProgress).expect("reconstruction"); // warm-up
    let mut ms: Vec<f64> = (0..repeats)
        .map(|_| {
            let t = Instant::now();
            reconstruct(&raw, &optics, &opts, &mut NoProgress).expect("reconstruction");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    println!("median_ms {:.1} min_ms {:.1}", ms[ms.len() / 2], ms[0]);
}
