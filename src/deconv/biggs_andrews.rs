//! Biggs–Andrews vector extrapolation (Biggs & Andrews 1997, Appl. Opt. 36:1766), the
//! acceleration of Richardson–Lucy: each step is pushed further along the last one.

use rayon::prelude::*;

/// Biggs–Andrews step. On entry `x` = RL(y_k) (the new estimate) and `y_k` = the point
/// the step was taken from; `prev` = previous estimate x_k, `g_prev` = previous step
/// g_{k−1}. On exit `x` = y_{k+1} = max(x_{k+1} + α(x_{k+1} − x_k), 0) with
/// α = Σ g_k g_{k−1} / Σ g_{k−1}², clamped to [0, 1]; `prev` = x_{k+1}; `g_prev` = g_k.
pub(super) fn extrapolate(
    x: &mut [f32],
    y_k: &[f32],
    prev: &mut [f32],
    g_prev: &mut [f32],
    have_g: &mut bool,
) {
    let (num, den) = x
        .par_iter()
        .zip(y_k.par_iter())
        .zip(g_prev.par_iter())
        .map(|((&xn, &yk), &gp)| {
            let g = (xn - yk) as f64;
            (g * gp as f64, (gp as f64) * (gp as f64))
        })
        .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    let alpha = if *have_g && den > 0.0 {
        (num / den).clamp(0.0, 1.0) as f32
    } else {
        0.0
    };
    x.par_iter_mut()
        .zip(y_k.par_iter())
        .zip(prev.par_iter_mut())
        .zip(g_prev.par_iter_mut())
        .for_each(|(((xn, &yk), p), gp)| {
            let new = *xn;
            *gp = new - yk;
            let predicted = new + alpha * (new - *p);
            *p = new;
            *xn = predicted.max(0.0);
        });
    *have_g = true;
}
