use super::super::conv::Epilogue;
use super::super::conv_direct::{ChannelsLast, Padded};

/// Seeded values in [−1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

/// The same-padded 3×3 cross-correlation in float64: (n, o, h, w).
fn reference(x: &[f32], wt: &[f32], shape: (usize, usize, usize, usize), o: usize) -> Vec<f64> {
    crate::nn::cpu::test_util::reference(x, shape, wt, o, 3)
}

/// Largest |a − b| over the largest |b| (over 1e-12 where b is all zero).
fn rel_err(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-12f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0f64, |m, (&x, &y)| m.max((x as f64 - y).abs()))
        / scale
}

fn avx512() -> bool {
    let ok = super::dispatch().avx512f();
    if !ok {
        eprintln!("no AVX-512: this path is not used here");
    }
    ok
}

/// The scratch buffers are held between calls and freed, on every thread of the pool,
/// when the last memory-reuse guard (training, prediction) goes.
#[test]
fn scratch_is_released_with_the_last_guard() {
    if !avx512() {
        return;
    }
    // A pool of its own, so that other tests' convolutions do not refill the buffers
    // looked at here; the guard's drop frees the buffers of the pool it runs in.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        let held = || {
            rayon::broadcast(|_| super::scratch_floats())
                .into_iter()
                .sum::<usize>()
        };
        let guard = super::super::reuse_freed_memory();
        let (n, c, o, h, w) = (1, 8, 8, 8, 8);
        let xp = Padded::new(&values(n * c * h * w, 5), n, c, h, w);
        let plain = Epilogue {
            bias: None,
            relu: false,
        };
        let wt = values(o * c * 9, 6);
        // One chunk: each thread convolves on its own, so that every thread holds
        // buffers.
        rayon::broadcast(|_| super::convolve(&xp, &wt, o, c, false, plain));
        let each = rayon::broadcast(|_| super::scratch_floats());
        assert!(
            each.iter().all(|&f| f >= 16 * c * super::TT),
            "held {each:?} floats"
        );
        drop(guard);
        // Other tests may hold guards meanwhile: the buffers go with the last one.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while held() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
            drop(super::super::reuse_freed_memory());
        }
        assert_eq!(held(), 0);
    });
}

/// Shapes: several chunks with a partial last one, tile rows shorter than a vector and
/// straddling chunks, images straddling chunks, channel counts off the register tiles.
const SHAPES: [(usize, usize, usize, usize, usize); 5] = [
    // (n, c, o, h, w)
    (2, 5, 7, 6, 10),
    (3, 16, 8, 16, 16),
    (1, 32, 16, 34, 40),
    (2, 12, 21, 8, 70),
    (1, 4, 1, 2, 2),
];

/// The forward convolution (with bias and ReLU) and the input gradient's convolution
/// against the float64 definition.
#[test]
fn forward_matches_float64_reference() {
    if !avx512() {
        return;
    }
    for (k, &(n, c, o, h, w)) in SHAPES.iter().enumerate() {
        let x = values(n * c * h * w, 1 + k as u64);
        let wt = values(o * c * 9, 100 + k as u64);
        let bias = values(o, 200 + k as u64);
        let xp = Padded::new(&x, n, c, h, w);
        let plain = Epilogue {
            bias: None,
            relu: false,
        };
        let y = super::convolve(&xp, &wt, o, c, false, plain);
        let want = reference(&x, &wt, (n, c, h, w), o);
        let e = rel_err(&y, &want);
        assert!(e < 2e-6, "{n}×{c}→{o} {h}×{w}: relative error {e:e}");
        // Bias and ReLU.
        let y = super::convolve(
            &xp,
            &wt,
            o,
            c,
            false,
            Epilogue {
                bias: Some(&bias),
                relu: true,
            },
        );
        let biased: Vec<f64> = want
            .iter()
            .enumerate()
            .map(|(i, v)| (v + bias[i / (h * w) % o] as f64).max(0.0))
            .collect();
        let e = rel_err(&y, &biased);
        assert!(e < 2e-6, "{n}×{c}→{o} {h}×{w} with bias, ReLU: {e:e}");
        // The flipped, transposed kernel (the input gradient): out channel ci from in
        // channel oc with w[oc, ci, 2 − dy, 2 − dx].
        if o >= super::MIN_IN {
            let g = values(n * o * h * w, 300 + k as u64);
            let gp = Padded::new(&g, n, o, h, w);
            let gx = super::convolve(&gp, &wt, o, c, true, plain);
            let mut flipped = vec![0f32; c * o * 9];
            for oc in 0..o {
                for ci in 0..c {
                    for t in 0..9 {
                        flipped[(ci * o + oc) * 9 + t] = wt[(oc * c + ci) * 9 + 8 - t];
                    }
                }
            }
            let e = rel_err(&gx, &reference(&g, &flipped, (n, o, h, w), c));
            assert!(e < 2e-6, "{n}×{o}→{c} {h}×{w} flipped: {e:e}");
        }
    }
}

/// The kernel gradient Σ g[b, oc, y, x]·x[b, ci, y + dy − 1, x + dx − 1] against float64.
#[test]
fn kernel_grad_matches_float64_reference() {
    if !avx512() {
        return;
    }
    for (k, &(n, c, o, h, w)) in SHAPES.iter().enumerate() {
        let x = values(n * c * h * w, 11 + k as u64);
        let g = values(n * o * h * w, 111 + k as u64);
        let o16 = o.next_multiple_of(16);
        let mut last = vec![0f32; n * h * w * o16];
        for b in 0..n {
            for oc in 0..o {
                for p in 0..h * w {
                    last[(b * h * w + p) * o16 + oc] = g[(b * o + oc) * h * w + p];
                }
            }
        }
        let dw = super::kernel_grad(
            &Padded::new(&x, n, c, h, w),
            &ChannelsLast { data: last, o16 },
            o,
        );
        let mut want = vec![0f64; o * c * 9];
        for b in 0..n {
            for oc in 0..o {
                for ci in 0..c {
                    for t in 0..9 {
                        let (dy, dx) = (t / 3, t % 3);
                        let mut s = 0f64;
                        for yy in 0..h {
                            for xx in 0..w {
                                let (sy, sx) = (yy + dy, xx + dx);
                                if sy >= 1 && sy <= h && sx >= 1 && sx <= w {
                                    s += g[((b * o + oc) * h + yy) * w + xx] as f64
                                        * x[((b * c + ci) * h + sy - 1) * w + sx - 1] as f64;
                                }
                            }
                        }
                        want[(oc * c + ci) * 9 + t] += s;
                    }
                }
            }
        }
        let e = rel_err(&dw, &want);
        assert!(e < 2e-6, "{n}×{c}→{o} {h}×{w}: relative error {e:e}");
    }
}
