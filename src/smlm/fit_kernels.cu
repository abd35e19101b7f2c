// Spot fitting on the GPU, compiled at run time with NVRTC (src/smlm/fit_cuda.rs): one thread per
// spot, the same model, start, Levenberg–Marquardt iterations, bounds, rejection rules and
// Cramér–Rao bound as the CPU path in src/smlm/fit.rs (read that file for the model), line by
// line, in double precision. Windows are w×w pixels (3 ≤ w ≤ MAX_WINDOW), row-major, x
// fastest, values in photons; `used` marks the pixels that take part (1) or not (0).
//
// Output per spot s, out[s * OUT_FIELDS + k]: x, y (pixels, window coordinates), photons,
// background (photons per pixel), σ (pixels), CRLB variance of x and of y (pixels²), residual
// standard deviation (photons per pixel), iterations; status[s] is 1 for an accepted fit and
// 0 for a rejected one (whose outputs are undefined).

#define NP 5
#define MAX_WINDOW 31
#define OUT_FIELDS 9

// Integrals of a unit-area 1D Gaussian centred at x with sigma over pixels [i, i + 1),
// i = 0..n, and their derivatives with respect to x and sigma (fit.rs: pixel_integrals).
__device__ void pixel_integrals(double x, double sigma, int n, double* e, double* de_dx,
                                double* de_ds) {
    const double s2 = 1.4142135623730951 * sigma;
    const double norm = 1.0 / (2.5066282746310002 * sigma);
    double u = -x;
    double t = u / s2;
    double erf_prev = erf(t);
    double g_prev = exp(-t * t);
    for (int i = 0; i < n; ++i) {
        const double u1 = u + 1.0;
        const double t1 = u1 / s2;
        const double erf1 = erf(t1);
        const double g1 = exp(-t1 * t1);
        e[i] = 0.5 * (erf1 - erf_prev);
        de_dx[i] = -norm * (g1 - g_prev);
        de_ds[i] = -norm / sigma * (u1 * g1 - u * g_prev);
        u = u1;
        erf_prev = erf1;
        g_prev = g1;
    }
}

struct Model {
    int w;
    double ex[MAX_WINDOW], ey[MAX_WINDOW], dex[MAX_WINDOW], dey[MAX_WINDOW];
    double dsx[MAX_WINDOW], dsy[MAX_WINDOW];
};

__device__ void model_set(Model* m, const double* th) {
    pixel_integrals(th[0], th[4], m->w, m->ex, m->dex, m->dsx);
    pixel_integrals(th[1], th[4], m->w, m->ey, m->dey, m->dsy);
}

// mu and dmu/dtheta at pixel (row j, column i).
__device__ double model_at(const Model* m, const double* th, int j, int i, double* d) {
    const double n = th[2];
    const double exy = m->ex[i] * m->ey[j];
    d[0] = n * m->dex[i] * m->ey[j];
    d[1] = n * m->ex[i] * m->dey[j];
    d[2] = exy;
    d[3] = 1.0;
    d[4] = n * (m->dsx[i] * m->ey[j] + m->ex[i] * m->dsy[j]);
    return th[3] + n * exy;
}

// Cost (Poisson deviance for mle != 0, else the sum of squares), gradient/2 and LM curvature.
__device__ double model_eval(Model* m, const double* th, const double* data,
                             const unsigned char* used, int mle, double* grad, double* hess) {
    model_set(m, th);
    const int w = m->w;
    double cost = 0.0;
    for (int a = 0; a < NP; ++a) {
        grad[a] = 0.0;
        for (int b = 0; b < NP; ++b) hess[a * NP + b] = 0.0;
    }
    double d[NP];
    for (int j = 0; j < w; ++j) {
        for (int i = 0; i < w; ++i) {
            if (!used[j * w + i]) continue;
            const double dk = data[j * w + i];
            double mu = model_at(m, th, j, i, d);
            double w1, w2;
            if (mle) {
                mu = fmax(mu, 1e-12);
                cost += 2.0 * (mu - dk);
                if (dk > 0.0) cost -= 2.0 * dk * log(mu / dk);
                w1 = 1.0 - dk / mu;
                w2 = dk / (mu * mu);
            } else {
                cost += (mu - dk) * (mu - dk);
                w1 = mu - dk;
                w2 = 1.0;
            }
            for (int a = 0; a < NP; ++a) {
                grad[a] += w1 * d[a];
                const double wd = w2 * d[a];
                for (int b = a; b < NP; ++b) hess[a * NP + b] += wd * d[b];
            }
        }
    }
    for (int a = 0; a < NP; ++a)
        for (int b = 0; b < a; ++b) hess[a * NP + b] = hess[b * NP + a];
    return cost;
}

// Solves A x = b (5×5, A and b overwritten) by Gaussian elimination with partial pivoting.
// Returns 0 when singular or not finite (fit.rs: solve; of equal pivots the last is taken, as
// Rust's max_by does).
__device__ int solve(double* a, double* b, double* x) {
    for (int c = 0; c < NP; ++c) {
        int p = c;
        for (int r = c + 1; r < NP; ++r)
            if (fabs(a[r * NP + c]) >= fabs(a[p * NP + c])) p = r;
        const double piv = a[p * NP + c];
        if (fabs(piv) <= 1e-300 || !isfinite(piv)) return 0;
        if (p != c) {
            for (int k = 0; k < NP; ++k) {
                const double t = a[c * NP + k];
                a[c * NP + k] = a[p * NP + k];
                a[p * NP + k] = t;
            }
            const double t = b[c];
            b[c] = b[p];
            b[p] = t;
        }
        for (int r = c + 1; r < NP; ++r) {
            const double f = a[r * NP + c] / a[c * NP + c];
            for (int k = c; k < NP; ++k) a[r * NP + k] -= f * a[c * NP + k];
            b[r] -= f * b[c];
        }
    }
    for (int r = NP - 1; r >= 0; --r) {
        double s = b[r];
        for (int k = r + 1; k < NP; ++k) s -= a[r * NP + k] * x[k];
        x[r] = s / a[r * NP + r];
    }
    for (int k = 0; k < NP; ++k)
        if (!isfinite(x[k])) return 0;
    return 1;
}

// Start: background from the window's border, position from the centroid of what lies above
// it, photons from the sum above it (fit.rs: initial_guess).
__device__ void initial_guess(const double* data, const unsigned char* used, int w,
                              double sigma, double* th) {
    double border = 0.0, count = 0.0;
    for (int j = 0; j < w; ++j)
        for (int i = 0; i < w; ++i)
            if (used[j * w + i] && (j == 0 || i == 0 || j == w - 1 || i == w - 1)) {
                border += data[j * w + i];
                count += 1.0;
            }
    const double b = fmax(border / fmax(count, 1.0), 0.01);
    double s = 0.0, sx = 0.0, sy = 0.0;
    for (int j = 0; j < w; ++j)
        for (int i = 0; i < w; ++i) {
            if (!used[j * w + i]) continue;
            const double v = fmax(data[j * w + i] - b, 0.0);
            s += v;
            sx += v * (i + 0.5);
            sy += v * (j + 0.5);
        }
    const double c = w / 2.0;
    th[0] = s > 0.0 ? sx / s : c;
    th[1] = s > 0.0 ? sy / s : c;
    th[2] = fmax(s, 1.0);
    th[3] = b;
    th[4] = sigma;
}

extern "C" __global__ void fit_spots(const double* windows, const unsigned char* used_all,
                                     int n, int w, int mle, double initial_sigma,
                                     double sigma_lo, double sigma_hi, int max_iterations,
                                     double* out, int* status) {
    const int s = blockIdx.x * blockDim.x + threadIdx.x;
    if (s >= n) return;
    status[s] = 0;
    const int ww = w * w;
    const unsigned char* used = used_all + (size_t)s * ww;
    int n_used = 0;
    for (int k = 0; k < ww; ++k) n_used += used[k] != 0;
    if (w < 3 || w > MAX_WINDOW || n_used < 2 * NP) return;
    double data[MAX_WINDOW * MAX_WINDOW];
    for (int k = 0; k < ww; ++k) {
        const double v = windows[(size_t)s * ww + k];
        if (!isfinite(v)) return;
        data[k] = mle ? fmax(v, 0.0) : v;
    }
    double th[NP];
    initial_guess(data, used, w, initial_sigma, th);
    Model m;
    m.w = w;
    double grad[NP], hess[NP * NP];
    double cost = model_eval(&m, th, data, used, mle, grad, hess);
    double lambda = 1e-3;
    int iterations = 0;
    double a[NP * NP], rhs[NP], step[NP], next[NP], grad_n[NP], hess_n[NP * NP];
    while (iterations < max_iterations) {
        iterations += 1;
        for (int k = 0; k < NP * NP; ++k) a[k] = hess[k];
        for (int k = 0; k < NP; ++k) {
            a[k * NP + k] += lambda * a[k * NP + k] + 1e-12;
            rhs[k] = -grad[k];
        }
        if (!solve(a, rhs, step)) return;
        for (int k = 0; k < NP; ++k) next[k] = th[k] + step[k];
        // Keep the model positive and sigma sane; steps out of bounds are halved instead.
        if (next[2] <= 0.0) next[2] = th[2] * 0.5;
        if (next[3] <= 0.0) next[3] = th[3] * 0.5;
        next[4] = fmin(fmax(fmin(fmax(next[4], th[4] * 0.5), th[4] * 2.0), 0.1), 10.0);
        const double cost_n = model_eval(&m, next, data, used, mle, grad_n, hess_n);
        if (isfinite(cost_n) && cost_n <= cost) {
            const double change = cost - cost_n;
            for (int k = 0; k < NP; ++k) {
                th[k] = next[k];
                grad[k] = grad_n[k];
            }
            for (int k = 0; k < NP * NP; ++k) hess[k] = hess_n[k];
            cost = cost_n;
            lambda = fmax(lambda * 0.1, 1e-9);
            const double moved = fmax(fmax(fabs(step[0]), fabs(step[1])), fabs(step[4]));
            if (change <= 1e-9 * fmax(fabs(cost), 1.0) || moved < 1e-6) break;
        } else {
            lambda *= 10.0;
            if (lambda > 1e9) break;
        }
    }
    const double wf = (double)w;
    for (int k = 0; k < NP; ++k)
        if (!isfinite(th[k])) return;
    if (!(th[0] >= 0.0 && th[0] <= wf && th[1] >= 0.0 && th[1] <= wf && th[2] > 0.0 &&
          th[3] >= 0.0 && th[4] >= sigma_lo && th[4] <= sigma_hi))
        return;
    // Poisson Fisher information at the estimate, and the residuals.
    model_set(&m, th);
    double fisher[NP * NP];
    for (int k = 0; k < NP * NP; ++k) fisher[k] = 0.0;
    double r1 = 0.0, r2 = 0.0, cnt = 0.0, d[NP];
    for (int j = 0; j < w; ++j)
        for (int i = 0; i < w; ++i) {
            if (!used[j * w + i]) continue;
            cnt += 1.0;
            const double mu = model_at(&m, th, j, i, d);
            const double r = data[j * w + i] - mu;
            r1 += r;
            r2 += r * r;
            const double inv = 1.0 / fmax(mu, 1e-12);
            for (int p = 0; p < NP; ++p)
                for (int q = 0; q < NP; ++q) fisher[p * NP + q] += inv * d[p] * d[q];
        }
    // Diagonal of the inverse (fit.rs: inverse_diagonal), x and y only are reported.
    double crlb[2];
    for (int k = 0; k < 2; ++k) {
        double e[NP], col[NP];
        for (int q = 0; q < NP; ++q) e[q] = q == k ? 1.0 : 0.0;
        for (int q = 0; q < NP * NP; ++q) a[q] = fisher[q];
        if (!solve(a, e, col)) return;
        crlb[k] = col[k];
    }
    // The CPU path inverts all 5 columns and rejects a singular one; columns 2..4 are solved
    // here only for that check.
    for (int k = 2; k < NP; ++k) {
        double e[NP], col[NP];
        for (int q = 0; q < NP; ++q) e[q] = q == k ? 1.0 : 0.0;
        for (int q = 0; q < NP * NP; ++q) a[q] = fisher[q];
        if (!solve(a, e, col)) return;
    }
    if (!(crlb[0] > 0.0 && crlb[1] > 0.0 && isfinite(crlb[0]) && isfinite(crlb[1]))) return;
    const double mean = r1 / cnt;
    double* o = out + (size_t)s * OUT_FIELDS;
    o[0] = th[0];
    o[1] = th[1];
    o[2] = th[2];
    o[3] = th[3];
    o[4] = th[4];
    o[5] = crlb[0];
    o[6] = crlb[1];
    o[7] = sqrt(fmax(r2 / cnt - mean * mean, 0.0));
    o[8] = (double)iterations;
    status[s] = 1;
}
