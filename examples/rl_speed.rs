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
    // σ 3 planes axially, 1.5 pixels laterally.
    let psf = Psf::gaussian_voxels((pz, pxy, pxy), (3.0, 1.5));
    let img = Array3::from_shape_fn((64, 256, 256), |(z, y, x)| {
        10.0 + ((x * 7 + y * 3 + z) % 17) as f32
    });
    let vol = Volume::new(img, VoxelSize::default());
    let t = Instant::now();
    let opts = RlOptions {
        iterations,
        ..Default::default()
    };
    let r = richardson_lucy(&vol, &psf, &opts, &mut NoProgress).unwrap();
    println!(
        "{} iterations on {}: {:.2} s",
        r.iterations,
        r.device,
        t.elapsed().as_secs_f64()
    );
}
