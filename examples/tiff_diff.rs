//! Relative RMS difference of two TIFF images of the same dimensions: ‖a − b‖₂ / ‖b‖₂ over
//! every pixel, `b` being the reference. Exit status 1 when it exceeds `LIMIT` (or the
//! dimensions differ). Used by `scripts/check-natives.sh` to compare the Windows CLI's
//! results (under Wine) with the Linux CLI's.
//!
//! cargo run --release --example tiff_diff -- A.tif REFERENCE.tif [LIMIT]

use fluorecon::io::tiff::read_tiff;
use std::path::Path;

fn main() -> fluorecon::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: tiff_diff A.tif REFERENCE.tif [LIMIT]");
        std::process::exit(2);
    }
    let a = read_tiff(Path::new(&args[0]))?;
    let b = read_tiff(Path::new(&args[1]))?;
    let dims =
        |h: &fluorecon::io::tiff::Hyperstack| (h.width, h.height, h.channels, h.slices, h.frames);
    if dims(&a) != dims(&b) {
        println!("dimensions differ: {:?} vs {:?}", dims(&a), dims(&b));
        std::process::exit(1);
    }
    let (mut diff, mut norm) = (0.0f64, 0.0f64);
    for (x, y) in a.data.iter().zip(&b.data) {
        diff += (*x as f64 - *y as f64).powi(2);
        norm += (*y as f64).powi(2);
    }
    let relative = (diff / norm.max(f64::MIN_POSITIVE)).sqrt();
    println!("relative RMS difference {relative:.3e}");
    let limit: f64 = args.get(2).map_or(Ok(1e-4), |s| s.parse()).unwrap_or(1e-4);
    // NaN (a NaN pixel) fails too.
    if relative.is_nan() || relative > limit {
        println!("above the limit {limit:e}");
        std::process::exit(1);
    }
    Ok(())
}
