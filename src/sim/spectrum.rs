//! The Fourier-space view shown beside a SIM reconstruction.

use ndarray::ArrayView2;

/// The Fourier-space view of an image: log₁₀(1 + |FFT|), zero frequency at pixel
/// (nx/2, ny/2), row-major (ny, nx). Used to show the SIM spectrum with the detected pattern
/// peaks: frequency (kx, ky) in Fourier-grid pixels is at (nx/2 + kx, ny/2 + ky).
pub fn fourier_view(image: ArrayView2<f32>) -> Vec<f32> {
    let (ny, nx) = image.dim();
    let mut spec: Vec<crate::fft::Complex32> = image
        .iter()
        .map(|&v| crate::fft::Complex32::new(v, 0.0))
        .collect();
    crate::fft::Fft2::new(ny, nx).forward(&mut spec);
    let mut out = vec![0f32; ny * nx];
    for j in 0..ny {
        let y = (j + ny / 2) % ny;
        for i in 0..nx {
            let x = (i + nx / 2) % nx;
            out[y * nx + x] = (1.0 + spec[j * nx + i].norm()).log10();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourier_view_puts_a_cosine_at_its_frequency() {
        // cos(2π·5x/32): peaks at kx = ±5, i.e. pixels x = 16 ± 5 of row 8.
        let img = ndarray::Array2::from_shape_fn((16, 32), |(_, x)| {
            (2.0 * std::f32::consts::PI * 5.0 * x as f32 / 32.0).cos()
        });
        let v = fourier_view(img.view());
        let top: Vec<usize> = {
            let mut idx: Vec<usize> = (0..v.len()).collect();
            idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
            idx[..2].to_vec()
        };
        let mut peaks: Vec<(usize, usize)> = top.iter().map(|&i| (i / 32, i % 32)).collect();
        peaks.sort();
        assert_eq!(peaks, vec![(8, 11), (8, 21)]);
        assert!((v[8 * 32 + 11] - (1.0f32 + 256.0).log10()).abs() < 1e-4);
    }
}
