//! Times Richardson–Lucy on a 64×256×256 volume (the benchmark size) without file I/O:
//! `cargo run --release --example rl_speed -- [iterations] [psf_z psf_xy]`.
use fluorecon::deconv::{richardson_lucy, RlOptions};
use fluorecon::psf::Psf;
use fluorecon::{NoProgress, Volume, VoxelSize};
use ndarray::Array3;
use std::time::Instant;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let iterations = args.first().copied().unwrap_or(50);
    let (pz, pxy) = (
        args.get(1).copied().unwrap_or(31),
        args.get(2).copied().unwrap_or(63),
    );
    let mut k = Array3::from_shape_fn((pz, pxy, pxy), |(z, y, x)| {
        let (dz, dy, dx) = (
            z as f32 - (pz / 2) as f32,
            y as f32 - (pxy / 2) as f32,
            x as f32 - (pxy / 2) as f32,
        );
        (-(dz * dz / 18.0 + (dy * dy + dx * dx) / 4.5)).exp()
    });
    let s = k.sum();
    k.mapv_inplace(|v| v / s);
    let img = Array3::from_shape_fn((64, 256, 256), |(z, y, x)| {
        10.0 + ((x * 7 + y * 3 + z) % 17) as f32
    });
    let vol = Volume::new(img, VoxelSize::default());
    let t = Instant::now();
    let opts = RlOptions {
        iterations,
        ..Default::default()
    };
    let r = richardson_lucy(&vol, &Psf { data: k }, &opts, &mut NoProgress).unwrap();
    println!(
        "{} iterations on {}: {:.2} s",
        r.iterations,
        r.device,
        t.elapsed().as_secs_f64()
    );
}
