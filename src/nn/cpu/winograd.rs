//! Winograd F(2×2, 3×3) convolution (Lavin & Gray, "Fast algorithms for convolutional neural
//! networks", 2016) for the 3×3 layers of [`super::conv_direct`]: the same padded planes
//! in, the same outputs, with 16 multiplications per 2×2 output tile and channel pair
//! instead of 36 (2.25× less arithmetic in the inner loop).
//!
//! Every 2×2 block of output pixels (a *tile*) reads a 4×4 patch d of each padded input
//! plane. With the transforms
//!
//! ```text
//!     Bᵀ = [1  0 −1  0]      G = [1    0    0 ]      Aᵀ = [1  1  1  0]
//!          [0  1  1  0]          [1/2  1/2  1/2]           [0  1 −1 −1]
//!          [0 −1  1  0]          [1/2 −1/2  1/2]
//!          [0  1  0 −1]          [0    0    1 ]
//! ```
//!
//! the tile's output for kernel k is Aᵀ·[(G·k·Gᵀ) ⊙ (Bᵀ·d·B)]·A, and the sum over input
//! channels moves inside: for each of the 16 positions ξ of the 4×4 transformed tile, the
//! transformed outputs M[ξ] = U[ξ]·V[ξ] are one matrix product of the transformed kernels
//! U[ξ] (outputs × inputs) with the transformed inputs V[ξ] (inputs × tiles). That product
//! runs in [`super::conv_direct::forward_tile`]'s register tiles (8 output channels × 48
//! tiles).
//!
//! The kernel gradient follows from the same factorisation: ∂L/∂U[ξ] = Σ_tiles
//! (A·∂L/∂Y·Aᵀ)[ξ] · V[ξ] (one product per ξ, summed over tiles), then ∂L/∂k = Gᵀ·∂L/∂U·G.
//!
//! Tiles are numbered image by image, row by row (tile (b, ty, tx) covers output rows
//! 2ty, 2ty + 1 and columns 2tx, 2tx + 1 of image b) and handled in chunks of [`TT`]; the
//! transformed inputs of a chunk (16 × channels × TT floats, ≤ 1.2 MB for 192 channels)
//! stay in the L2 cache while every output channel uses them. Images of odd height or
//! width, and layers with fewer than [`MIN_IN`] input channels, keep the direct path.
//!
//! The rounding differs from the direct sum: the transforms add and subtract inputs of
//! similar size before the products, a relative error of a few 1e-7 (checked against a
//! float64 reference in the tests below).

#![allow(clippy::incompatible_msrv)]

use super::conv::Epilogue;
use super::conv_direct::{forward_tile, kernel_taps, ChannelsLast, Padded};
use super::dispatch;
use crate::parallel::SharedMut;
use rayon::prelude::*;
use std::arch::x86_64::*;

/// Tiles per chunk: two register tiles of [`XB`] vectors.
const TT: usize = 2 * 16 * XB;
/// Output channels per register tile of the forward product.
const OB: usize = 8;
/// 16-tile vectors per register tile of the forward product.
const XB: usize = 3;
/// Fewest input channels for which the transforms pay off (the first layer of a network,
/// one channel, keeps the direct path).
const MIN_IN: usize = 4;
/// Input channels per register tile of the kernel-gradient product (× 2 vectors of 16
/// output channels = 24 accumulators).
const KC: usize = 12;

/// Strides (between channels, between positions ξ) of the transformed inputs of a chunk
/// with c channels, `[ξ][channel][slot]`: the matrix product for one ξ reads the channels'
/// rows TT floats (6 cache lines) apart. (Channel-major, 16·TT = 6 KB apart, put every
/// row of a product in the same few L1 sets and ran it at a third of the speed for 192
/// channels.)
fn v_strides(c: usize) -> (usize, usize) {
    (TT, c * TT)
}

/// Whether this path serves a 3×3 convolution of the direct path with `ins` input channels
/// of h × w images: whole 2×2 tiles, enough channels, and Winograd not switched off (see
/// [`super::dispatch()`]).
pub(super) fn available(ins: usize, h: usize, w: usize) -> bool {
    ins >= MIN_IN && h % 2 == 0 && w % 2 == 0 && h > 0 && w > 0 && dispatch().winograd()
}

/// The tiles of n images of h × w pixels.
#[derive(Clone, Copy)]
struct Tiles {
    /// Tiles per row (w / 2).
    tw: usize,
    /// Tiles per image.
    per_image: usize,
    /// Tiles in all.
    total: usize,
}

impl Tiles {
    fn new(n: usize, h: usize, w: usize) -> Self {
        let (th, tw) = (h / 2, w / 2);
        Tiles {
            tw,
            per_image: th * tw,
            total: n * th * tw,
        }
    }

    /// Tiles g0..g0 + len as runs within one tile row: (image, tile row, first tile
    /// column, run length, position of the run's first tile counted from g0).
    fn rows(
        self,
        g0: usize,
        len: usize,
    ) -> impl Iterator<Item = (usize, usize, usize, usize, usize)> {
        let mut g = g0;
        std::iter::from_fn(move || {
            (g < g0 + len).then(|| {
                let (b, t) = (g / self.per_image, g % self.per_image);
                let (ty, tx) = (t / self.tw, t % self.tw);
                let run = (self.tw - tx).min(g0 + len - g);
                let item = (b, ty, tx, run, g - g0);
                g += run;
                item
            })
        })
    }
}

/// The 1-D kernel transform G·(k0, k1, k2).
fn g_transform(k0: f32, k1: f32, k2: f32) -> [f32; 4] {
    [k0, 0.5 * (k0 + k1 + k2), 0.5 * (k0 - k1 + k2), k2]
}

/// U = G·k·Gᵀ of a 3×3 kernel (row-major): U[4i + j].
fn transform_kernel(k: &[f32; 9]) -> [f32; 16] {
    // Columns first (G·k, 4 × 3), then rows.
    let cols: [[f32; 4]; 3] = std::array::from_fn(|x| g_transform(k[x], k[3 + x], k[6 + x]));
    let mut u = [0f32; 16];
    for i in 0..4 {
        let row = g_transform(cols[0][i], cols[1][i], cols[2][i]);
        u[4 * i..4 * i + 4].copy_from_slice(&row);
    }
    u
}

/// The 1-D transposed kernel transform Gᵀ·(u0, u1, u2, u3).
fn gt_transform(u0: f32, u1: f32, u2: f32, u3: f32) -> [f32; 3] {
    [u0 + 0.5 * (u1 + u2), 0.5 * (u1 - u2), 0.5 * (u1 + u2) + u3]
}

/// ∂L/∂k = Gᵀ·∂L/∂U·G for one kernel (3×3, row-major) from ∂L/∂U[4i + j].
fn transform_kernel_grad(du: &[f32; 16]) -> [f32; 9] {
    let rows: [[f32; 3]; 4] = std::array::from_fn(|i| {
        gt_transform(du[4 * i], du[4 * i + 1], du[4 * i + 2], du[4 * i + 3])
    });
    let mut k = [0f32; 9];
    for x in 0..3 {
        let col = gt_transform(rows[0][x], rows[1][x], rows[2][x], rows[3][x]);
        for (y, v) in col.into_iter().enumerate() {
            k[3 * y + x] = v;
        }
    }
    k
}

/// The transformed kernels of `wt` (o, c, 3, 3) — or, with `flip`, of the input gradient's
/// kernel (see [`kernel_taps`]) — as `[out tile][ξ][in][OB]`, the last tile zero-filled;
/// with the output and input counts.
fn pack_weights(wt: &[f32], o: usize, c: usize, flip: bool) -> (Vec<f32>, usize, usize) {
    let (outs, ins) = if flip { (c, o) } else { (o, c) };
    let mut packed = vec![0f32; outs.div_ceil(OB) * 16 * ins * OB];
    for out in 0..outs {
        for inp in 0..ins {
            let k = kernel_taps(wt, c, flip, out, inp);
            for (xi, u) in transform_kernel(&k).into_iter().enumerate() {
                packed[((out / OB * 16 + xi) * ins + inp) * OB + out % OB] = u;
            }
        }
    }
    (packed, outs, ins)
}

/// V = Bᵀ·d·B of the 4×4 input patch d of tiles g0..g0 + len in every channel of the
/// padded images `x`: `v[ξ·xs + ci·cs + slot]` with (cs, xs) = [`v_strides`], slot = tile −
/// g0. Vectorised over 16 tiles of a row: the patch columns 2tx … 2tx + 3 are the even and
/// odd floats of two loads each.
///
/// # Safety
/// AVX-512F must be available; `v` must hold 16·c·TT floats; len ≤ TT.
#[target_feature(enable = "avx512f")]
unsafe fn input_transform(x: &Padded, tiles: Tiles, g0: usize, len: usize, v: &mut [f32]) {
    let (c, wp, ps) = (x.c, x.wp, x.ps);
    let (cs, xs) = v_strides(c);
    assert!(v.len() >= 16 * c * TT && len <= TT);
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    let (add, sub) = (_mm512_add_ps, _mm512_sub_ps);
    let vp = v.as_mut_ptr();
    // Channel by channel (a contiguous run of rows of one plane per tile row), fetching the
    // next channel's rows into the cache meanwhile: the planes are larger than the cache
    // and a run of a few rows is too short for the hardware prefetcher.
    let runs: Vec<_> = tiles.rows(g0, len).collect();
    let fetch = |ci: usize| {
        for &(b, ty, tx0, run, _) in &runs {
            let first = x
                .data
                .as_ptr()
                .add((b * c + ci) * ps + 2 * ty * wp + 2 * tx0);
            for r in 0..4 {
                for at in (0..2 * run + 2).step_by(16) {
                    _mm_prefetch::<_MM_HINT_T0>(first.add(r * wp + at).cast());
                }
            }
        }
    };
    fetch(0);
    for ci in 0..c {
        if ci + 1 < c {
            fetch(ci + 1);
        }
        for &(b, ty, tx0, run, s0) in &runs {
            // Padded row 2ty of the plane: the first row of the tiles' patches.
            let plane = x.data.as_ptr().add((b * c + ci) * ps + 2 * ty * wp);
            for k in (0..run).step_by(16) {
                let nv = (run - k).min(16);
                let mask: __mmask16 = (((1u32 << nv) - 1) & 0xffff) as u16;
                let col = 2 * (tx0 + k);
                // The reads reach 34 floats from column col ≤ w − 2 of row 2ty + 3 ≤ h + 1,
                // i.e. at most 30 floats past that row: inside the plane, whose slack after
                // row h + 1 is at least 80 floats. Lanes past the run are not stored.
                let t: [[__m512; 4]; 4] = std::array::from_fn(|r| {
                    let p = plane.add(r * wp + col);
                    let (a0, a1) = (_mm512_loadu_ps(p), _mm512_loadu_ps(p.add(16)));
                    let (b0, b1) = (_mm512_loadu_ps(p.add(2)), _mm512_loadu_ps(p.add(18)));
                    let d0 = _mm512_permutex2var_ps(a0, even, a1);
                    let d1 = _mm512_permutex2var_ps(a0, odd, a1);
                    let d2 = _mm512_permutex2var_ps(b0, even, b1);
                    let d3 = _mm512_permutex2var_ps(b0, odd, b1);
                    // d·B along the row.
                    [sub(d0, d2), add(d1, d2), sub(d2, d1), sub(d1, d3)]
                });
                let cols: [[__m512; 4]; 4] =
                    std::array::from_fn(|j| std::array::from_fn(|r| t[r][j]));
                for (j, [t0, t1, t2, t3]) in cols.into_iter().enumerate() {
                    // Bᵀ· down the column.
                    let col_v = [sub(t0, t2), add(t1, t2), sub(t2, t1), sub(t1, t3)];
                    for (i, cv) in col_v.into_iter().enumerate() {
                        let at = (4 * i + j) * xs + ci * cs + s0 + k;
                        _mm512_mask_storeu_ps(vp.add(at), mask, cv);
                    }
                }
            }
        }
    }
}

/// Y = Aᵀ·M·A of the transformed outputs `m[(ξ·OB + i)·TT + slot]` of output channels
/// oc0 + i (i < no) for tiles g0..g0 + len, plus the epilogue, written to the output
/// (n, outs, h, w).
///
/// # Safety
/// AVX-512F must be available; `out` must be writable at every pixel of those tiles and
/// channels, and written by nothing else meanwhile.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn output_transform(
    m: &[f32],
    (no, oc0, outs): (usize, usize, usize),
    tiles: Tiles,
    (g0, len): (usize, usize),
    epi: Epilogue,
    out: *mut f32,
    (h, w): (usize, usize),
) {
    assert!(m.len() >= 16 * OB * TT && len <= TT && no <= OB);
    let lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    let (add, sub) = (_mm512_add_ps, _mm512_sub_ps);
    let zero = _mm512_setzero_ps();
    for i in 0..no {
        let oc = oc0 + i;
        let bias = _mm512_set1_ps(epi.bias.map_or(0.0, |b| b[oc]));
        for s0 in (0..len).step_by(16) {
            let ld = |xi: usize| _mm512_loadu_ps(m.as_ptr().add((xi * OB + i) * TT + s0));
            // M·A along each row, then Aᵀ· down the two columns.
            let a: [[__m512; 2]; 4] = std::array::from_fn(|r| {
                let (m0, m1, m2, m3) = (ld(4 * r), ld(4 * r + 1), ld(4 * r + 2), ld(4 * r + 3));
                [add(add(m0, m1), m2), sub(sub(m1, m2), m3)]
            });
            // Aᵀ· down the columns: output rows r = 0, 1 of every tile, as (column 0, column
            // 1) pairs, plus the epilogue; then each row with its columns interleaved, as
            // they lie in the image: tile 0 columns 0, 1, tile 1 columns 0, 1, …
            let rows: [[__m512; 2]; 2] = std::array::from_fn(|r| {
                let [c0, c1] = std::array::from_fn(|j| {
                    let v = if r == 0 {
                        add(add(a[0][j], a[1][j]), a[2][j])
                    } else {
                        sub(sub(a[1][j], a[2][j]), a[3][j])
                    };
                    let v = add(v, bias);
                    if epi.relu {
                        _mm512_max_ps(v, zero)
                    } else {
                        v
                    }
                });
                [
                    _mm512_permutex2var_ps(c0, lo, c1),
                    _mm512_permutex2var_ps(c0, hi, c1),
                ]
            });
            let nv = (len - s0).min(16);
            let (b, t) = ((g0 + s0) / tiles.per_image, (g0 + s0) % tiles.per_image);
            let (ty, tx) = (t / tiles.tw, t % tiles.tw);
            if nv == 16 && tx + 16 <= tiles.tw {
                // All 16 tiles in one row: stored as they are.
                for (r, [first, second]) in rows.into_iter().enumerate() {
                    let dst = out.add(((b * outs + oc) * h + 2 * ty + r) * w + 2 * tx);
                    _mm512_storeu_ps(dst, first);
                    _mm512_storeu_ps(dst.add(16), second);
                }
                continue;
            }
            // Otherwise through a buffer, a run of tiles of one row at a time.
            let mut buf = [[0f32; 32]; 2];
            for (row, [first, second]) in buf.iter_mut().zip(rows) {
                _mm512_storeu_ps(row.as_mut_ptr(), first);
                _mm512_storeu_ps(row.as_mut_ptr().add(16), second);
            }
            for (b, ty, tx, run, l) in tiles.rows(g0 + s0, nv) {
                for (r, row) in buf.iter().enumerate() {
                    let dst = out.add(((b * outs + oc) * h + 2 * ty + r) * w + 2 * tx);
                    std::ptr::copy_nonoverlapping(row.as_ptr().add(2 * l), dst, 2 * run);
                }
            }
        }
    }
}

thread_local! {
    /// Per-thread buffers of the transformed tiles (and kernel-gradient sums), kept between
    /// calls: allocating and zeroing them per chunk cost as much as the transforms.
    static SCRATCH: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Frees this thread's scratch buffers (the next use allocates them again).
pub(super) fn release_scratch() {
    SCRATCH.with(|s| *s.borrow_mut() = Vec::new());
}

/// Floats held in this thread's scratch buffers.
#[cfg(test)]
fn scratch_floats() -> usize {
    SCRATCH.with(|s| s.borrow().iter().map(Vec::capacity).sum())
}

/// `f` with K of this thread's scratch buffers, of `sizes` floats. Their contents are
/// whatever the last call left: the callers write before they read, except for the lanes
/// past a chunk's last tile, whose results are discarded. Each starts on a 64-byte
/// boundary, the vectors' size, so that no vector load or store of a row (a multiple of 16
/// floats) straddles two cache lines.
fn with_scratch<const K: usize, R>(sizes: [usize; K], f: impl FnOnce([&mut [f32]; K]) -> R) -> R {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < K {
            s.resize(K, Vec::new());
        }
        let mut bufs = s.iter_mut();
        f(std::array::from_fn(|i| {
            let (v, n) = (bufs.next().expect("K buffers"), sizes[i]);
            if v.len() < n + 16 {
                v.resize(n + 16, 0.0);
            }
            let at = v.as_ptr().align_offset(64).min(16);
            &mut v[at..at + n]
        }))
    })
}

/// The same-padded 3×3 convolution of the padded images `x` with `wt` (o, c, 3, 3) — or,
/// with `flip`, with the input gradient's kernel of `wt` — plus the epilogue: (n, outs, h,
/// w), channels-first; as [`super::conv_direct::convolve`], by Winograd's F(2×2, 3×3).
/// Needs AVX-512F and [`available`].
pub(super) fn convolve(
    x: &Padded,
    wt: &[f32],
    o: usize,
    c: usize,
    flip: bool,
    epi: Epilogue,
) -> Vec<f32> {
    let (packed, outs, ins) = pack_weights(wt, o, c, flip);
    assert_eq!(ins, x.c);
    assert!(x.h % 2 == 0 && x.w % 2 == 0 && dispatch().avx512f());
    let (n, h, w) = (x.n(), x.h, x.w);
    let tiles = Tiles::new(n, h, w);
    let mut out: Vec<f32> = Vec::with_capacity(n * outs * h * w);
    crate::image::advise_huge_pages(out.as_ptr(), n * outs * h * w);
    let ptr = SharedMut::new(out.as_mut_ptr());
    let ptr = &ptr;
    (0..tiles.total.div_ceil(TT))
        .into_par_iter()
        .for_each(|chunk| {
            with_scratch([16 * ins * TT, 16 * OB * TT], |[v, m]| {
                let (g0, len) = (chunk * TT, TT.min(tiles.total - chunk * TT));
                let groups = len.div_ceil(16 * XB);
                let (cs, xs) = v_strides(ins);
                // SAFETY: AVX-512F was checked above; `v` holds 16·ins·TT floats.
                unsafe { input_transform(x, tiles, g0, len, v) };
                for ot in 0..outs.div_ceil(OB) {
                    let no = (outs - ot * OB).min(OB);
                    for xi in 0..16 {
                        let wts = (packed[(ot * 16 + xi) * ins * OB..].as_ptr(), OB);
                        for grp in 0..groups {
                            let inp = v[xi * xs + grp * 16 * XB..].as_ptr();
                            let dst = (m[xi * OB * TT + grp * 16 * XB..].as_mut_ptr(), TT);
                            // SAFETY: the product reads 16·XB slots of `ins` rows `cs` apart in
                            // `v` (slots < groups·48 ≤ TT; those past `len` hold stale values
                            // whose results are not written out) and ins·OB weights; it writes
                            // rows i < no of 48 floats, TT apart, in `m`.
                            unsafe {
                                match no {
                                    8 => forward_tile::<8, XB, 1>(inp, cs, ins, &[0], wts, dst),
                                    7 => forward_tile::<7, XB, 1>(inp, cs, ins, &[0], wts, dst),
                                    6 => forward_tile::<6, XB, 1>(inp, cs, ins, &[0], wts, dst),
                                    5 => forward_tile::<5, XB, 1>(inp, cs, ins, &[0], wts, dst),
                                    4 => forward_tile::<4, XB, 1>(inp, cs, ins, &[0], wts, dst),
                                    3 => forward_tile::<3, XB, 1>(inp, cs, ins, &[0], wts, dst),
                                    2 => forward_tile::<2, XB, 1>(inp, cs, ins, &[0], wts, dst),
                                    _ => forward_tile::<1, XB, 1>(inp, cs, ins, &[0], wts, dst),
                                }
                            }
                        }
                    }
                    // SAFETY: AVX-512F is available; this chunk's tiles of channels ot·OB + i
                    // are written by this chunk only.
                    unsafe {
                        output_transform(
                            m,
                            (no, ot * OB, outs),
                            tiles,
                            (g0, len),
                            epi,
                            ptr.get(),
                            (h, w),
                        )
                    };
                }
            })
        });
    // SAFETY: the chunks cover every tile, and every tile every pixel (h, w even), of every
    // output channel of every image.
    unsafe { out.set_len(n * outs * h * w) };
    out
}

/// A·∂L/∂Y·Aᵀ of the 2×2 output gradient of tiles g0..g0 + len, from the channels-last
/// gradient `g`: `mg[(ξ·TT + slot)·o16 + oc]`.
///
/// # Safety
/// AVX-512F must be available; `mg` must hold 16·TT·o16 floats; len ≤ TT.
#[target_feature(enable = "avx512f")]
unsafe fn grad_transform(
    g: &ChannelsLast,
    tiles: Tiles,
    (g0, len): (usize, usize),
    (h, w): (usize, usize),
    mg: &mut [f32],
) {
    let o16 = g.o16;
    assert!(mg.len() >= 16 * TT * o16 && len <= TT);
    assert!(g.data.len() >= tiles.total * 4 * o16);
    let (add, sub) = (_mm512_add_ps, _mm512_sub_ps);
    let neg = |v| _mm512_sub_ps(_mm512_setzero_ps(), v);
    let gp = g.data.as_ptr();
    let mp = mg.as_mut_ptr();
    for (b, ty, tx0, run, s0) in tiles.rows(g0, len) {
        for l in 0..run {
            let px = ((b * h + 2 * ty) * w + 2 * (tx0 + l)) * o16;
            for cv in (0..o16).step_by(16) {
                let ld = |at: usize| _mm512_loadu_ps(gp.add(px + at + cv));
                let (g00, g01, g10, g11) = (ld(0), ld(o16), ld(w * o16), ld(w * o16 + o16));
                // A· down the columns (rows i of A·∂Y), then ·Aᵀ along the rows.
                let rows = [
                    g00,
                    g01,
                    add(g00, g10),
                    add(g01, g11),
                    sub(g00, g10),
                    sub(g01, g11),
                ];
                let r: [[__m512; 2]; 4] = [
                    [rows[0], rows[1]],
                    [rows[2], rows[3]],
                    [rows[4], rows[5]],
                    [neg(g10), neg(g11)],
                ];
                for (i, [x0, x1]) in r.into_iter().enumerate() {
                    let vals = [x0, add(x0, x1), sub(x0, x1), neg(x1)];
                    for (j, v) in vals.into_iter().enumerate() {
                        _mm512_storeu_ps(mp.add(((4 * i + j) * TT + s0 + l) * o16 + cv), v);
                    }
                }
            }
        }
    }
}

/// One kernel-gradient register tile: 16·NV output channels (`mg`, slots `o16` apart) ×
/// NC input channels (`v`, rows `cs` apart) summed over slots 0..len, added to
/// `du[ci·o16 + oc]`.
///
/// # Safety
/// AVX-512F must be available; the reads and writes must be inside their buffers.
#[target_feature(enable = "avx512f")]
unsafe fn kernel_grad_tile<const NV: usize, const NC: usize>(
    mg: *const f32,
    o16: usize,
    (v, cs): (*const f32, usize),
    len: usize,
    du: *mut f32,
) {
    let mut acc = [[_mm512_setzero_ps(); NC]; NV];
    for s in 0..len {
        let gv: [__m512; NV] = std::array::from_fn(|q| _mm512_loadu_ps(mg.add(s * o16 + 16 * q)));
        for j in 0..NC {
            let b = _mm512_set1_ps(*v.add(j * cs + s));
            for (acc_q, &g) in acc.iter_mut().zip(&gv) {
                acc_q[j] = _mm512_fmadd_ps(g, b, acc_q[j]);
            }
        }
    }
    for (q, acc_q) in acc.iter().enumerate() {
        for (j, a) in acc_q.iter().enumerate() {
            let d = du.add(j * o16 + 16 * q);
            _mm512_storeu_ps(d, _mm512_add_ps(_mm512_loadu_ps(d), *a));
        }
    }
}

/// ∂L/∂U[ξ] for one chunk, added to `du[(ξ·c + ci)·o16 + oc]`: per ξ, the product of the
/// transformed gradient (o16 × slots) and the transformed input (slots × c).
///
/// # Safety
/// AVX-512F must be available; `v` holds 16·c·TT floats, `mg` 16·TT·o16, `du` 16·c·o16.
#[target_feature(enable = "avx512f")]
unsafe fn kernel_grad_chunk(
    v: &[f32],
    mg: &[f32],
    du: &mut [f32],
    c: usize,
    o16: usize,
    len: usize,
) {
    assert!(v.len() >= 16 * c * TT && mg.len() >= 16 * TT * o16 && du.len() >= 16 * c * o16);
    let (cs, xs) = v_strides(c);
    for xi in 0..16 {
        let mut ob = 0;
        while ob < o16 {
            let two = o16 - ob >= 32;
            let mut ci = 0;
            while ci < c {
                let g = mg.as_ptr().add(xi * TT * o16 + ob);
                let vv = v.as_ptr().add(xi * xs + ci * cs);
                let d = du.as_mut_ptr().add((xi * c + ci) * o16 + ob);
                let nc = match c - ci {
                    r if r >= KC => KC,
                    r if r >= 8 => 8,
                    r if r >= 4 => 4,
                    _ => 1,
                };
                match (two, nc) {
                    (true, KC) => kernel_grad_tile::<2, KC>(g, o16, (vv, cs), len, d),
                    (true, 8) => kernel_grad_tile::<2, 8>(g, o16, (vv, cs), len, d),
                    (true, 4) => kernel_grad_tile::<2, 4>(g, o16, (vv, cs), len, d),
                    (true, _) => kernel_grad_tile::<2, 1>(g, o16, (vv, cs), len, d),
                    (false, KC) => kernel_grad_tile::<1, KC>(g, o16, (vv, cs), len, d),
                    (false, 8) => kernel_grad_tile::<1, 8>(g, o16, (vv, cs), len, d),
                    (false, 4) => kernel_grad_tile::<1, 4>(g, o16, (vv, cs), len, d),
                    (false, _) => kernel_grad_tile::<1, 1>(g, o16, (vv, cs), len, d),
                }
                ci += nc;
            }
            ob += if two { 32 } else { 16 };
        }
    }
}

/// ∂L/∂weight (o, c, 3, 3) from the padded input `x` (c channels) and the channels-last
/// output gradient `g` (o channels) of the same images; as the direct path's kernel
/// gradient, by Winograd's F(2×2, 3×3). As in [`super::ordered_sum`], the chunks are
/// summed in a fixed number of runs, each in order into its own accumulator (here a
/// per-thread buffer of the 16 transformed sums, turned into kernel gradients at the end of
/// the run), and the runs added in order: the result does not depend on the thread count.
/// Needs AVX-512F and [`available`].
pub(super) fn kernel_grad(x: &Padded, g: &ChannelsLast, o: usize) -> Vec<f32> {
    let (n, c, h, w, o16) = (x.n(), x.c, x.h, x.w, g.o16);
    assert!(h % 2 == 0 && w % 2 == 0 && dispatch().avx512f());
    let tiles = Tiles::new(n, h, w);
    let chunks = tiles.total.div_ceil(TT);
    let parts = super::in_runs(chunks, super::GRADIENT_RUNS, |run| {
        with_scratch([16 * c * TT, 16 * TT * o16, 16 * c * o16], |[v, mg, du]| {
            du.fill(0.0);
            for chunk in run {
                let (g0, len) = (chunk * TT, TT.min(tiles.total - chunk * TT));
                // SAFETY: AVX-512F was checked above; the buffers have the sizes asked
                // for.
                unsafe {
                    input_transform(x, tiles, g0, len, v);
                    grad_transform(g, tiles, (g0, len), (h, w), mg);
                    kernel_grad_chunk(v, mg, du, c, o16, len);
                }
            }
            let mut dw = vec![0f32; o * c * 9];
            for oc in 0..o {
                for ci in 0..c {
                    let u: [f32; 16] = std::array::from_fn(|xi| du[(xi * c + ci) * o16 + oc]);
                    dw[(oc * c + ci) * 9..][..9].copy_from_slice(&transform_kernel_grad(&u));
                }
            }
            dw
        })
    });
    super::add_in_order(&parts, o * c * 9)
}

#[cfg(test)]
mod tests;
