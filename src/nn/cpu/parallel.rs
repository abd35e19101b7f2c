//! Parallel sums over the kernels' buffers split into a fixed number of runs added in a
//! fixed order, so that seeded training gives the same weights for any thread count (the
//! pointer that workers share to write disjoint parts of one output is
//! [`crate::parallel::SharedMut`]).

/// A sum of per-item contributions computed in parallel in a fixed order: items 0..n split
/// into at most `runs` contiguous runs (fewer when n is smaller); each run adds its items in
/// order into its own zeroed accumulator of `len` values (with a scratch value from
/// `scratch` for its own use), then the runs' accumulators are added in run order, element
/// ranges in parallel. Unlike rayon's `fold` / `reduce`, whose split points follow the work
/// stealing, the float sums come out the same on every run and for any number of threads:
/// seeded training is reproducible bit for bit.
pub(super) fn ordered_sum<T, S>(
    n: usize,
    runs: usize,
    len: usize,
    scratch: impl Fn() -> S + Sync,
    f: impl Fn(&mut [T], &mut S, usize) + Sync,
) -> Vec<T>
where
    T: Copy + Default + std::ops::AddAssign + Send + Sync,
{
    let parts = in_runs(n, runs, |items| {
        let (mut acc, mut s) = (vec![T::default(); len], scratch());
        for i in items {
            f(&mut acc, &mut s, i);
        }
        acc
    });
    add_in_order(&parts, len)
}

/// Items 0..n split into at most `runs` contiguous runs (fewer when n is smaller), the
/// split depending on n and `runs` only: `run(items)` for each run, in parallel, the
/// results in run order. The first step of [`ordered_sum`].
pub(super) fn in_runs<R: Send>(
    n: usize,
    runs: usize,
    run: impl Fn(std::ops::Range<usize>) -> R + Sync,
) -> Vec<R> {
    use rayon::prelude::*;
    let k = runs.clamp(1, n.max(1));
    (0..k)
        .into_par_iter()
        .map(|j| run(j * n / k..(j + 1) * n / k))
        .collect()
}

/// The element-wise sum of `parts` (each ≥ `len` values) added in order, element ranges in
/// parallel: the last step of [`ordered_sum`].
pub(super) fn add_in_order<T>(parts: &[Vec<T>], len: usize) -> Vec<T>
where
    T: Copy + Default + std::ops::AddAssign + Send + Sync,
{
    use rayon::prelude::*;
    let mut total = vec![T::default(); len];
    total.par_chunks_mut(4096).enumerate().for_each(|(c, out)| {
        for p in parts {
            for (o, &v) in out.iter_mut().zip(&p[c * 4096..]) {
                *o += v;
            }
        }
    });
    total
}

/// Runs of [`ordered_sum`] for the weight-gradient sums: enough for 16 threads, few enough
/// that the per-run sums stay small next to the work.
pub(super) const GRADIENT_RUNS: usize = 16;
