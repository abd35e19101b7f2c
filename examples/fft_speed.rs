//! Times the 3D real FFT passes: `cargo run --release --example fft_speed -- NZ NY NX`.
use fluorecon::fft::Fft3;
use std::time::Instant;

fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let shape = (
        a.first().copied().unwrap_or(96),
        a.get(1).copied().unwrap_or(320),
        a.get(2).copied().unwrap_or(320),
    );
    let fft = Fft3::new(shape);
    let x: Vec<f32> = (0..fft.len()).map(|i| (i % 13) as f32).collect();
    let mut spec = fft.make_spectrum();
    let mut out = vec![0f32; fft.len()];
    fft.forward(&x, &mut spec);
    let t = Instant::now();
    for _ in 0..5 {
        fft.forward(&x, &mut spec);
    }
    let f = t.elapsed().as_secs_f64() / 5.0;
    let t = Instant::now();
    for _ in 0..5 {
        fft.inverse(&mut spec, &mut out);
    }
    let i = t.elapsed().as_secs_f64() / 5.0;
    println!(
        "{shape:?}: forward {:.1} ms, inverse {:.1} ms",
        f * 1e3,
        i * 1e3
    );
}
