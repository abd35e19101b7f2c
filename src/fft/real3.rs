//! Real-to-complex 2D/3D FFTs on RustFFT, with plans made once and reused, lines processed in
//! parallel (rayon), and FFT-friendly (7-smooth) sizes.
//!
//! Layout: a real volume (nz, ny, nx), x fastest, transforms to a half spectrum
//! (nz, ny, nx/2 + 1), kx fastest, in the usual FFT frequency order (index 0 = zero
//! frequency). The forward transform is unnormalised; the inverse divides by nz·ny·nx, so
//! `inverse(forward(x)) == x`.

use ndarray::Axis;
use rayon::prelude::*;
use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

use crate::parallel::SharedMut;

pub use rustfft::num_complex::Complex32;

/// Number of lines gathered together when transforming along a strided axis (y or z): the
/// gather reads this many contiguous values per row, which keeps the cache busy.
const LINE_BLOCK: usize = 16;

/// Smallest n' ≥ n whose only prime factors are 2, 3, 5 and 7 (fast FFT sizes).
pub fn next_fast_len(n: usize) -> usize {
    let mut m = n.max(1);
    loop {
        let mut r = m;
        for p in [2, 3, 5, 7] {
            while r % p == 0 {
                r /= p;
            }
        }
        if r == 1 {
            return m;
        }
        m += 1;
    }
}

/// Smallest even 7-smooth size ≥ n (the real-to-complex axis is fastest at even lengths).
pub fn next_fast_even_len(n: usize) -> usize {
    let mut m = next_fast_len(n);
    while m % 2 == 1 {
        m = next_fast_len(m + 1);
    }
    m
}

/// An operation on one output row of a transform: `(row index z·ny + y, values)`, returning
/// two partial sums.
pub type RowOp<'a> = &'a (dyn Fn(usize, &mut [f32]) -> (f64, f64) + Sync);

/// FFT plans for real volumes of one shape. Cheap to share between threads.
pub struct Fft3 {
    shape: (usize, usize, usize),
    r2c: Arc<dyn RealToComplex<f32>>,
    c2r: Arc<dyn ComplexToReal<f32>>,
    y_fwd: Arc<dyn Fft<f32>>,
    y_inv: Arc<dyn Fft<f32>>,
    z_fwd: Arc<dyn Fft<f32>>,
    z_inv: Arc<dyn Fft<f32>>,
}

impl Fft3 {
    /// Plans the transforms for volumes of `shape` = (nz, ny, nx). Any sizes ≥ 1 work;
    /// 7-smooth sizes are fastest.
    pub fn new(shape: (usize, usize, usize)) -> Self {
        let (nz, ny, nx) = shape;
        assert!(nz > 0 && ny > 0 && nx > 0, "FFT of an empty volume");
        let mut real = RealFftPlanner::<f32>::new();
        let mut complex = FftPlanner::<f32>::new();
        Fft3 {
            shape,
            r2c: real.plan_fft_forward(nx),
            c2r: real.plan_fft_inverse(nx),
            y_fwd: complex.plan_fft_forward(ny),
            y_inv: complex.plan_fft_inverse(ny),
            z_fwd: complex.plan_fft_forward(nz),
            z_inv: complex.plan_fft_inverse(nz),
        }
    }

    /// Real shape (nz, ny, nx).
    pub fn shape(&self) -> (usize, usize, usize) {
        self.shape
    }

    /// Half-spectrum shape (nz, ny, nx/2 + 1).
    pub fn spectrum_shape(&self) -> (usize, usize, usize) {
        (self.shape.0, self.shape.1, self.shape.2 / 2 + 1)
    }

    /// Number of real voxels.
    pub fn len(&self) -> usize {
        self.shape.0 * self.shape.1 * self.shape.2
    }

    /// Never true (a plan needs at least one voxel); present for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Number of half-spectrum values.
    pub fn spectrum_len(&self) -> usize {
        let (a, b, c) = self.spectrum_shape();
        a * b * c
    }

    /// A zeroed half-spectrum buffer.
    pub fn make_spectrum(&self) -> Vec<Complex32> {
        crate::image::work_buffer(self.spectrum_len())
    }

    /// Forward transform of `input` (nz·ny·nx reals, x fastest) into `spectrum`.
    pub fn forward(&self, input: &[f32], spectrum: &mut [Complex32]) {
        self.forward_supported(input, spectrum, (self.shape.0, self.shape.1));
    }

    /// Forward transform of an `input` known to be zero outside planes z < support.0 and
    /// rows y < support.1: the transforms of all-zero lines are skipped.
    pub fn forward_supported(
        &self,
        input: &[f32],
        spectrum: &mut [Complex32],
        support: (usize, usize),
    ) {
        let sh = self.spectrum_shape();
        self.rows_forward(input, spectrum, support);
        transform_axis(spectrum, sh, support.0, Axis(1), &self.y_fwd);
        transform_axis(spectrum, sh, sh.0, Axis(0), &self.z_fwd);
    }

    /// Inverse transform of `spectrum` (destroyed) into `output`, normalised by 1/(nz·ny·nx).
    pub fn inverse(&self, spectrum: &mut [Complex32], output: &mut [f32]) {
        self.inverse_wanted(spectrum, output, (self.shape.0, self.shape.1));
    }

    /// Inverse transform that computes only the planes z < wanted.0 and rows y < wanted.1
    /// of `output`; the rest of `output` is left as it was.
    pub fn inverse_wanted(
        &self,
        spectrum: &mut [Complex32],
        output: &mut [f32],
        wanted: (usize, usize),
    ) {
        let sh = self.spectrum_shape();
        transform_axis(spectrum, sh, sh.0, Axis(0), &self.z_inv);
        transform_axis(spectrum, sh, wanted.0, Axis(1), &self.y_inv);
        self.rows_inverse(spectrum, output, wanted, None);
    }

    /// Real-to-complex transforms of the rows (x) inside `support`; zero rows elsewhere.
    fn rows_forward(&self, input: &[f32], spectrum: &mut [Complex32], support: (usize, usize)) {
        let (_, ny, nx) = self.shape;
        let nkx = nx / 2 + 1;
        assert_eq!(input.len(), self.len(), "FFT input length");
        assert_eq!(spectrum.len(), self.spectrum_len(), "FFT spectrum length");
        let r2c = &self.r2c;
        input
            .par_chunks(nx)
            .zip(spectrum.par_chunks_mut(nkx))
            .enumerate()
            .for_each_init(
                || (vec![0f32; nx], r2c.make_scratch_vec()),
                |(row, scratch), (r, (src, dst))| {
                    if r / ny < support.0 && r % ny < support.1 {
                        row.copy_from_slice(src);
                        r2c.process_with_scratch(row, dst, scratch)
                            .expect("buffer lengths match the plan");
                    } else {
                        dst.fill(Complex32::new(0.0, 0.0));
                    }
                },
            );
    }

    /// Complex-to-real transforms of the rows inside `wanted`, normalised by 1/(nz·ny·nx),
    /// each row then handed to `row_op` (if any) while it is still in cache. Returns the sum
    /// of what `row_op` returned.
    fn rows_inverse(
        &self,
        spectrum: &mut [Complex32],
        output: &mut [f32],
        wanted: (usize, usize),
        row_op: Option<RowOp>,
    ) -> (f64, f64) {
        let (_, ny, nx) = self.shape;
        let nkx = nx / 2 + 1;
        assert_eq!(output.len(), self.len(), "FFT output length");
        assert_eq!(spectrum.len(), self.spectrum_len(), "FFT spectrum length");
        let scale = 1.0 / self.len() as f32;
        let c2r = &self.c2r;
        spectrum
            .par_chunks_mut(nkx)
            .zip(output.par_chunks_mut(nx))
            .enumerate()
            .filter(|(r, _)| r / ny < wanted.0 && r % ny < wanted.1)
            .map_init(
                || c2r.make_scratch_vec(),
                |scratch, (r, (src, dst))| {
                    // A Hermitian spectrum has real DC and Nyquist terms; round-off may leave
                    // a tiny imaginary part there, which carries no information.
                    src[0].im = 0.0;
                    if nx % 2 == 0 {
                        src[nkx - 1].im = 0.0;
                    }
                    c2r.process_with_scratch(src, dst, scratch)
                        .expect("buffer lengths match the plan");
                    dst.iter_mut().for_each(|v| *v *= scale);
                    row_op.map_or((0.0, 0.0), |op| op(r, dst))
                },
            )
            .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1))
    }

    /// `output = IFFT(H · FFT(input))` (or with conj(H)), with the multiplication fused into
    /// the last forward / first inverse pass. `input` is zero outside z < support.0,
    /// y < support.1; only z < wanted.0, y < wanted.1 of `output` are computed.
    #[allow(clippy::too_many_arguments)]
    fn filter(
        &self,
        input: &[f32],
        output: &mut [f32],
        transfer: &[Complex32],
        conjugate: bool,
        support: (usize, usize),
        wanted: (usize, usize),
        spectrum: &mut [Complex32],
        row_op: Option<RowOp>,
    ) -> (f64, f64) {
        let nz = self.shape.0;
        assert_eq!(
            transfer.len(),
            self.spectrum_len(),
            "transfer function length"
        );
        let sh = self.spectrum_shape();
        self.rows_forward(input, spectrum, support);
        let (axis, forward, inverse) = if nz > 1 {
            transform_axis(spectrum, sh, support.0, Axis(1), &self.y_fwd);
            (Axis(0), &self.z_fwd, &self.z_inv)
        } else {
            (Axis(1), &self.y_fwd, &self.y_inv)
        };
        let f = LineFilter {
            inverse,
            transfer,
            conjugate,
        };
        transform_lines(spectrum, sh, sh.0, axis, forward, Some(f));
        if nz > 1 {
            transform_axis(spectrum, sh, wanted.0, Axis(1), &self.y_inv);
        }
        self.rows_inverse(spectrum, output, wanted, row_op)
    }
}

/// In-place complex FFT along `axis` (0 = z, or 1 = y within the planes z < `planes`) of a
/// half spectrum of `shape` (nz, ny, nkx).
fn transform_axis(
    spectrum: &mut [Complex32],
    shape: (usize, usize, usize),
    planes: usize,
    axis: Axis,
    fft: &Arc<dyn Fft<f32>>,
) {
    transform_lines(spectrum, shape, planes, axis, fft, None);
}

/// Multiplication by a transfer function between a forward and an inverse FFT along the
/// same axis, done while the lines are gathered (saves two passes over the spectrum).
struct LineFilter<'a> {
    inverse: &'a Arc<dyn Fft<f32>>,
    /// Same layout as the spectrum.
    transfer: &'a [Complex32],
    conjugate: bool,
}

/// The FFT (and optional filter) of every line along `axis`. Lines are taken in tiles of
/// up to LINE_BLOCK neighbours whose elements are contiguous in memory (element i of the
/// tile's lines at `base + i·stride + 0..width`), gathered transposed into a buffer,
/// transformed, and scattered back; tiles run in parallel.
fn transform_lines(
    spectrum: &mut [Complex32],
    (nz, ny, nkx): (usize, usize, usize),
    planes: usize,
    axis: Axis,
    fft: &Arc<dyn Fft<f32>>,
    filter: Option<LineFilter>,
) {
    assert_eq!(spectrum.len(), nz * ny * nkx, "spectrum length");
    let along_z = axis.index() == 0;
    let n = if along_z { nz } else { ny };
    if n == 1 && filter.is_none() {
        return;
    }
    // Tiles (base offset, width) and the distance between consecutive line elements.
    let (stride, tiles): (usize, Vec<(usize, usize)>) = if along_z {
        let plane = ny * nkx;
        let tiles = (0..plane)
            .step_by(LINE_BLOCK)
            .map(|b| (b, LINE_BLOCK.min(plane - b)))
            .collect();
        (plane, tiles)
    } else {
        let tiles = (0..planes.min(nz))
            .flat_map(|z| {
                (0..nkx)
                    .step_by(LINE_BLOCK)
                    .map(move |k| (z * ny * nkx + k, LINE_BLOCK.min(nkx - k)))
            })
            .collect();
        (nkx, tiles)
    };
    let scratch_len = fft.get_inplace_scratch_len().max(
        filter
            .as_ref()
            .map_or(0, |f| f.inverse.get_inplace_scratch_len()),
    );
    let data = SharedMut::new(spectrum.as_mut_ptr());
    tiles.par_iter().for_each_init(
        || {
            (
                vec![Complex32::new(0.0, 0.0); n * LINE_BLOCK],
                vec![Complex32::new(0.0, 0.0); scratch_len],
            )
        },
        |(lines, scratch), &(base, width)| {
            let lines = &mut lines[..n * width];
            // SAFETY: base + (n−1)·stride + width ≤ spectrum.len() by construction of the
            // tiles, and no other task touches these elements (see SharedMut).
            let row = |i: usize| unsafe {
                std::slice::from_raw_parts_mut(data.get().add(base + i * stride), width)
            };
            for i in 0..n {
                for (line, v) in lines.chunks_exact_mut(n).zip(row(i).iter()) {
                    line[i] = *v;
                }
            }
            fft.process_with_scratch(lines, scratch);
            if let Some(f) = &filter {
                for i in 0..n {
                    let h = &f.transfer[base + i * stride..base + i * stride + width];
                    for (line, t) in lines.chunks_exact_mut(n).zip(h) {
                        line[i] *= if f.conjugate { t.conj() } else { *t };
                    }
                }
                f.inverse.process_with_scratch(lines, scratch);
            }
            for i in 0..n {
                for (line, v) in lines.chunks_exact(n).zip(row(i).iter_mut()) {
                    *v = line[i];
                }
            }
        },
    );
}

/// Places a centred kernel (peak at index n/2 along each axis) into a zero volume of `shape`
/// with its centre at index 0 (wrapping around), and returns its half spectrum: the OTF
/// of a PSF. Every kernel dimension must be ≤ the corresponding `shape` dimension.
pub fn kernel_spectrum(kernel: &ndarray::Array3<f32>, fft: &Fft3) -> Vec<Complex32> {
    let wrapped = wrap_kernel(kernel, fft.shape());
    let mut spectrum = fft.make_spectrum();
    fft.forward(&wrapped, &mut spectrum);
    spectrum
}

/// A centred kernel (peak at index k/2 along each axis) placed in a zero volume of `shape`
/// with its centre at index 0, wrapping around: the real-space input of its OTF.
pub fn wrap_kernel(kernel: &ndarray::Array3<f32>, shape: (usize, usize, usize)) -> Vec<f32> {
    let (nz, ny, nx) = shape;
    let (kz, ky, kx) = kernel.dim();
    assert!(
        kz <= nz && ky <= ny && kx <= nx,
        "kernel larger than the FFT volume"
    );
    let mut wrapped = crate::image::work_buffer(nz * ny * nx);
    for ((z, y, x), &v) in kernel.indexed_iter() {
        let wz = (z + nz - kz / 2) % nz;
        let wy = (y + ny - ky / 2) % ny;
        let wx = (x + nx - kx / 2) % nx;
        wrapped[(wz * ny + wy) * nx + wx] += v;
    }
    wrapped
}

/// Convolution with one fixed kernel through its OTF, reusing the FFT plans and a spectrum
/// buffer: `convolve` applies H, `correlate` applies Hᵀ (the conjugate OTF, which is exact
/// for any kernel; flipping an array would shift even-sized kernels by one voxel).
pub struct OtfConvolver {
    fft: Fft3,
    otf: Vec<Complex32>,
    spectrum: Vec<Complex32>,
}

impl OtfConvolver {
    /// Plans the FFTs for `shape` and computes the OTF of the centred `kernel`.
    pub fn new(kernel: &ndarray::Array3<f32>, shape: (usize, usize, usize)) -> Self {
        let fft = Fft3::new(shape);
        let otf = kernel_spectrum(kernel, &fft);
        let spectrum = fft.make_spectrum();
        OtfConvolver { fft, otf, spectrum }
    }

    pub fn fft(&self) -> &Fft3 {
        &self.fft
    }

    /// `output = kernel ⊛ input` (circular, on the planned shape).
    pub fn convolve(&mut self, input: &[f32], output: &mut [f32]) {
        let (nz, ny, _) = self.fft.shape();
        self.apply(input, output, false, (nz, ny), (nz, ny))
    }

    /// `output = kernel ⋆ input` (circular correlation, the adjoint of `convolve`).
    pub fn correlate(&mut self, input: &[f32], output: &mut [f32]) {
        let (nz, ny, _) = self.fft.shape();
        self.apply(input, output, true, (nz, ny), (nz, ny))
    }

    /// `convolve` or `correlate` (`conjugate`) of an input that is zero outside planes
    /// z < support.0 and rows y < support.1, computing the output only on z < wanted.0,
    /// y < wanted.1 (the rest of `output` is left as it was).
    pub fn apply(
        &mut self,
        input: &[f32],
        output: &mut [f32],
        conjugate: bool,
        support: (usize, usize),
        wanted: (usize, usize),
    ) {
        self.apply_then(input, output, conjugate, support, wanted, None);
    }

    /// [`apply`](Self::apply), then `row_op(row, values)` on every computed output row
    /// (row = z·ny + y) while it is in cache; returns the sum of the pairs it returned
    /// (for reductions such as a relative change).
    pub fn apply_then(
        &mut self,
        input: &[f32],
        output: &mut [f32],
        conjugate: bool,
        support: (usize, usize),
        wanted: (usize, usize),
        row_op: Option<RowOp>,
    ) -> (f64, f64) {
        self.fft.filter(
            input,
            output,
            &self.otf,
            conjugate,
            support,
            wanted,
            &mut self.spectrum,
            row_op,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::f64::consts::PI;

    /// Naive 3D DFT in f64: the obviously-correct reference.
    fn naive_dft(x: &[f64], (nz, ny, nx): (usize, usize, usize)) -> Vec<(f64, f64)> {
        let nkx = nx / 2 + 1;
        let mut out = vec![(0.0, 0.0); nz * ny * nkx];
        for kz in 0..nz {
            for ky in 0..ny {
                for kx in 0..nkx {
                    let (mut re, mut im) = (0.0, 0.0);
                    for z in 0..nz {
                        for y in 0..ny {
                            for xx in 0..nx {
                                let phase = -2.0
                                    * PI
                                    * ((kz * z) as f64 / nz as f64
                                        + (ky * y) as f64 / ny as f64
                                        + (kx * xx) as f64 / nx as f64);
                                let v = x[(z * ny + y) * nx + xx];
                                re += v * phase.cos();
                                im += v * phase.sin();
                            }
                        }
                    }
                    out[(kz * ny + ky) * nkx + kx] = (re, im);
                }
            }
        }
        out
    }

    #[test]
    fn matches_naive_dft_on_random_data() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for shape in [
            (1, 1, 8),
            (1, 6, 10),
            (1, 7, 9),
            (3, 5, 8),
            (4, 7, 9),
            (5, 18, 21),
            (2, 33, 34),
        ] {
            let n = shape.0 * shape.1 * shape.2;
            let x: Vec<f64> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let fft = Fft3::new(shape);
            let mut spec = fft.make_spectrum();
            fft.forward(&xf, &mut spec);
            let reference = naive_dft(&x, shape);
            let norm = reference
                .iter()
                .map(|(r, i)| r * r + i * i)
                .sum::<f64>()
                .sqrt();
            let err = spec
                .iter()
                .zip(&reference)
                .map(|(c, (r, i))| (c.re as f64 - r).powi(2) + (c.im as f64 - i).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(
                err / norm < 1e-6,
                "shape {shape:?}: relative error {}",
                err / norm
            );

            let mut back = vec![0f32; n];
            fft.inverse(&mut spec, &mut back);
            let max_err = back
                .iter()
                .zip(&x)
                .map(|(a, b)| (*a as f64 - b).abs())
                .fold(0.0, f64::max);
            assert!(
                max_err < 1e-5,
                "shape {shape:?}: round trip error {max_err}"
            );
        }
    }

    #[test]
    fn fast_lengths_are_seven_smooth() {
        assert_eq!(next_fast_len(1), 1);
        assert_eq!(next_fast_len(11), 12);
        assert_eq!(next_fast_len(97), 98);
        assert_eq!(next_fast_len(317), 320);
        assert_eq!(next_fast_even_len(9), 10);
        assert_eq!(next_fast_even_len(15), 16);
        for n in 1..500 {
            let m = next_fast_len(n);
            assert!(m >= n && m <= n + n / 5 + 2);
        }
    }

    #[test]
    fn kernel_spectrum_of_centred_delta_is_flat() {
        let mut k = ndarray::Array3::<f32>::zeros((3, 5, 5));
        k[[1, 2, 2]] = 1.0;
        let fft = Fft3::new((4, 8, 10));
        let otf = kernel_spectrum(&k, &fft);
        for c in otf {
            assert!((c.re - 1.0).abs() < 1e-6 && c.im.abs() < 1e-6);
        }
    }
}
