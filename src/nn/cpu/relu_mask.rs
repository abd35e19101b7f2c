//! The ReLU's backward pass inside other passes: a gradient g counts only where the ReLU's
//! output y is positive. Written with AVX-512 mask registers where the CPU has them: the
//! compiler turns the scalar form into a branch per value (the crate targets the x86-64
//! baseline), and with a real network's activations that branch is mispredicted about half
//! the time, which made batch norm's backward pass 3× slower than with a regular mask.

// The AVX-512 intrinsics are stable since Rust 1.89 (see `conv_direct`).
#![allow(clippy::incompatible_msrv)]

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// g where y > 0, else 0.
#[inline(always)]
fn masked(g: f32, y: f32) -> f32 {
    if y > 0.0 {
        g
    } else {
        0.0
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    super::dispatch().avx512f()
}

/// `dst[i] = g[i]` where `y[i] > 0`, else 0.
pub(super) fn mask_row(dst: &mut [f32], g: &[f32], y: &[f32]) {
    let n = dst.len();
    let (g, y) = (&g[..n], &y[..n]);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F is present; every access is within the n values of each slice.
    let done = has_avx512().then(|| unsafe { mask_row_avx512(dst, g, y) });
    #[cfg(not(target_arch = "x86_64"))]
    let done = None;
    for i in done.unwrap_or(0)..n {
        dst[i] = masked(g[i], y[i]);
    }
}

/// [`mask_row`] for the whole vectors of 16; returns how many values it wrote.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn mask_row_avx512(dst: &mut [f32], g: &[f32], y: &[f32]) -> usize {
    let n = dst.len();
    let zero = _mm512_setzero_ps();
    let mut i = 0;
    while i + 16 <= n {
        let m = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(_mm512_loadu_ps(y.as_ptr().add(i)), zero);
        let v = _mm512_maskz_loadu_ps(m, g.as_ptr().add(i));
        _mm512_storeu_ps(dst.as_mut_ptr().add(i), v);
        i += 16;
    }
    i
}

/// (Σ g', Σ g'·(x − m)) with g' = g masked by y when `relu`, else g; f32 lanes of 16
/// summed in f64.
pub(super) fn grad_sums(x: &[f32], g: &[f32], y: &[f32], m: f32, relu: bool) -> (f64, f64) {
    let n = x.len();
    let (g, y) = (&g[..n], &y[..n]);
    #[cfg(target_arch = "x86_64")]
    if has_avx512() {
        // SAFETY: AVX-512F is present; every access is within the n values of each slice.
        return unsafe { grad_sums_avx512(x, g, y, m, relu) };
    }
    let (mut a, mut b) = ([0f32; 16], [0f32; 16]);
    for i in 0..n {
        let gv = if relu { masked(g[i], y[i]) } else { g[i] };
        a[i % 16] += gv;
        b[i % 16] += gv * (x[i] - m);
    }
    let sum = |v: [f32; 16]| v.iter().map(|&v| v as f64).sum::<f64>();
    (sum(a), sum(b))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn grad_sums_avx512(x: &[f32], g: &[f32], y: &[f32], m: f32, relu: bool) -> (f64, f64) {
    let n = x.len();
    let (zero, mv) = (_mm512_setzero_ps(), _mm512_set1_ps(m));
    let (mut a, mut b) = (zero, zero);
    let mut i = 0;
    while i + 16 <= n {
        let gv = if relu {
            let k = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(_mm512_loadu_ps(y.as_ptr().add(i)), zero);
            _mm512_maskz_loadu_ps(k, g.as_ptr().add(i))
        } else {
            _mm512_loadu_ps(g.as_ptr().add(i))
        };
        a = _mm512_add_ps(a, gv);
        let d = _mm512_sub_ps(_mm512_loadu_ps(x.as_ptr().add(i)), mv);
        b = _mm512_fmadd_ps(gv, d, b);
        i += 16;
    }
    let (mut la, mut lb) = ([0f32; 16], [0f32; 16]);
    _mm512_storeu_ps(la.as_mut_ptr(), a);
    _mm512_storeu_ps(lb.as_mut_ptr(), b);
    let (mut sa, mut sb) = (
        la.iter().map(|&v| v as f64).sum::<f64>(),
        lb.iter().map(|&v| v as f64).sum::<f64>(),
    );
    for j in i..n {
        let gv = if relu { masked(g[j], y[j]) } else { g[j] };
        sa += gv as f64;
        sb += (gv * (x[j] - m)) as f64;
    }
    (sa, sb)
}

/// The coefficients of batch norm's input gradient d = k·g' − shift − kx·x.
#[derive(Debug, Clone, Copy)]
pub(super) struct Affine {
    pub k: f32,
    pub shift: f32,
    pub kx: f32,
}

/// `d[i] = k·g'[i] − shift − kx·x[i]`, g' = g masked by y when `relu`, else g: batch norm's
/// input gradient.
pub(super) fn affine_grad(d: &mut [f32], x: &[f32], g: &[f32], y: &[f32], a: Affine, relu: bool) {
    let n = d.len();
    let (x, g, y) = (&x[..n], &g[..n], &y[..n]);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: AVX-512F is present; every access is within the n values of each slice.
    let done = has_avx512().then(|| unsafe { affine_grad_avx512(d, x, g, y, a, relu) });
    #[cfg(not(target_arch = "x86_64"))]
    let done = None;
    for i in done.unwrap_or(0)..n {
        let gv = if relu { masked(g[i], y[i]) } else { g[i] };
        d[i] = a.k * gv - a.shift - a.kx * x[i];
    }
}

/// [`affine_grad`] for the whole vectors of 16; returns how many values it wrote.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn affine_grad_avx512(
    d: &mut [f32],
    x: &[f32],
    g: &[f32],
    y: &[f32],
    a: Affine,
    relu: bool,
) -> usize {
    let n = d.len();
    let zero = _mm512_setzero_ps();
    let (kv, sv, kxv) = (
        _mm512_set1_ps(a.k),
        _mm512_set1_ps(a.shift),
        _mm512_set1_ps(a.kx),
    );
    let mut i = 0;
    while i + 16 <= n {
        let gv = if relu {
            let m = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(_mm512_loadu_ps(y.as_ptr().add(i)), zero);
            _mm512_maskz_loadu_ps(m, g.as_ptr().add(i))
        } else {
            _mm512_loadu_ps(g.as_ptr().add(i))
        };
        // k·g' − (shift + kx·x)
        let rest = _mm512_fmadd_ps(kxv, _mm512_loadu_ps(x.as_ptr().add(i)), sv);
        _mm512_storeu_ps(d.as_mut_ptr().add(i), _mm512_fmsub_ps(kv, gv, rest));
        i += 16;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Each function against its scalar definition in f64, on lengths that leave a
    /// remainder after the 16-value vectors, with a random mask.
    #[test]
    fn match_scalar_definitions() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for n in [0, 5, 16, 37, 1000] {
            let v = |rng: &mut ChaCha8Rng| -> Vec<f32> {
                (0..n).map(|_| rng.gen_range(-1.0f32..1.0)).collect()
            };
            let (x, g, y) = (v(&mut rng), v(&mut rng), v(&mut rng));
            let gm: Vec<f64> = (0..n)
                .map(|i| if y[i] > 0.0 { g[i] as f64 } else { 0.0 })
                .collect();
            let mut d = vec![9f32; n];
            mask_row(&mut d, &g, &y);
            assert!(
                d.iter().zip(&gm).all(|(&a, &b)| a as f64 == b),
                "mask_row, n {n}"
            );
            for relu in [true, false] {
                let gp: Vec<f64> = (0..n)
                    .map(|i| if relu { gm[i] } else { g[i] as f64 })
                    .collect();
                let m = 0.3f32;
                let (a, b) = grad_sums(&x, &g, &y, m, relu);
                let want_a: f64 = gp.iter().sum();
                let want_b: f64 = (0..n).map(|i| gp[i] * (x[i] - m) as f64).sum();
                assert!(
                    (a - want_a).abs() < 1e-4 && (b - want_b).abs() < 1e-4,
                    "n {n}"
                );
                let (k, shift, kx) = (1.7f32, 0.2f32, -0.6f32);
                affine_grad(&mut d, &x, &g, &y, Affine { k, shift, kx }, relu);
                for i in 0..n {
                    let want = k as f64 * gp[i] - shift as f64 - kx as f64 * x[i] as f64;
                    assert!((d[i] as f64 - want).abs() < 1e-5, "n {n} i {i}");
                }
            }
        }
    }
}
