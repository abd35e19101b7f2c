// 2D SIM Wiener reconstruction steps on the GPU, compiled at run time with NVRTC
// (src/sim/wiener_cuda.rs). Images are row-major (x fastest): the raw grid (ny, nx), the 2× grid
// (fy, fx) = (2ny, 2nx); spectra are in FFT order; complex values are interleaved float2.
// Every kernel loops over its elements with a grid stride, so any launch size covers any
// image. The arithmetic follows src/sim/reconstruct.rs (wiener_sim_with) step by step: same
// operands in the same order, the filters computed on the host by the same code.

#define GRID_STRIDE(i, n) \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); \
         i += (long long)gridDim.x * blockDim.x)

__device__ float2 cmul(float2 a, float2 b) {
    return make_float2(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

__device__ float2 scaled(float2 a, float s) {
    return make_float2(a.x * s, a.y * s);
}

// Bands 0 and +1 of one direction from its `phases` frames (n pixels each, one after the
// other): band b = Σ_p w_b[p]·frame_p, summed in phase order. Band +1 is written to `plus`,
// band 0 added to `zero_sum` (written when `first`).
extern "C" __global__ void separate_bands(const float* frames, int phases, const float2* w0,
                                          const float2* w1, float2* zero_sum, float2* plus,
                                          long long n, int first) {
    GRID_STRIDE(i, n) {
        float2 z = make_float2(0.0f, 0.0f);
        float2 p = make_float2(0.0f, 0.0f);
        for (int k = 0; k < phases; ++k) {
            const float v = frames[k * n + i];
            z.x += w0[k].x * v;
            z.y += w0[k].y * v;
            p.x += w1[k].x * v;
            p.y += w1[k].y * v;
        }
        plus[i] = p;
        if (first) {
            zero_sum[i] = z;
        } else {
            const float2 s = zero_sum[i];
            zero_sum[i] = make_float2(s.x + z.x, s.y + z.y);
        }
    }
}

// Index on an axis of n values (FFT order) of the frequency at index f of an axis of `len`
// ≥ n values, or −1 when that frequency is not on the shorter axis (the inverse of
// bands::padded_index: signed frequencies −⌊n/2⌋ … ⌈n/2⌉ − 1).
__device__ int coarse_index(int f, int len, int n) {
    const int s = f < (len + 1) / 2 ? f : f - len;
    if (s < -(n / 2) || s > (n + 1) / 2 - 1) {
        return -1;
    }
    return s >= 0 ? s : s + n;
}

// Zero padding: out (fy, fx) holds (in·h)·scale (in·scale when h is null) of the (ny, nx)
// spectrum `in` at the same signed frequency, and 0 at the frequencies `in` does not have.
extern "C" __global__ void zero_pad(const float2* in, const float* h, int ny, int nx,
                                    float2* out, int fy, int fx, float scale) {
    const long long n = (long long)fy * fx;
    GRID_STRIDE(i, n) {
        const int j = coarse_index((int)(i / fx), fy, ny);
        const int x = coarse_index((int)(i % fx), fx, nx);
        float2 v = make_float2(0.0f, 0.0f);
        if (j >= 0 && x >= 0) {
            const long long c = (long long)j * nx + x;
            v = in[c];
            if (h) {
                v = scaled(v, h[c]);
            }
            v = scaled(v, scale);
        }
        out[i] = v;
    }
}

// sum.x += 2·Re(f·s · (ramp_y[y]·ramp_x[x])) (sum = that, imaginary part 0, when `first`):
// band +1 after the unnormalised inverse FFT (s = 1/(fy·fx)) shifted down by k₀ and added
// with its conjugate mirror, band −1.
extern "C" __global__ void shift_add_real(float2* sum, const float2* f, const float2* ramp_x,
                                          const float2* ramp_y, int fy, int fx, float s,
                                          int first) {
    const long long n = (long long)fy * fx;
    GRID_STRIDE(i, n) {
        const float2 v = scaled(f[i], s);
        const float2 e = cmul(ramp_y[i / fx], ramp_x[i % fx]);
        const float re = (first ? 0.0f : sum[i].x) + 2.0f * (v.x * e.x - v.y * e.y);
        sum[i] = make_float2(re, first ? 0.0f : sum[i].y);
    }
}

// num = (num + wf·h)·filter: the shifted bands' spectrum plus band 0 weighted by the OTF,
// times the Wiener filter A/(Σ|H|² + w²).
extern "C" __global__ void wiener_combine(float2* num, const float2* wf, const float* h,
                                          const float* filter, long long n) {
    GRID_STRIDE(i, n) {
        const float2 b = scaled(wf[i], h[i]);
        const float2 a = num[i];
        num[i] = scaled(make_float2(a.x + b.x, a.y + b.y), filter[i]);
    }
}

// The widefield spectrum packed for one inverse FFT: w + i·(w·g), w = v/angles, g the
// widefield Wiener filter; 0 on the raw grid's Nyquist row and column (nyq_y, nyq_x; −1:
// none), so that both parts are Hermitian.
extern "C" __global__ void widefield_pack(float2* wf, const float* g, int fy, int fx,
                                          int nyq_y, int nyq_x, float angles) {
    const long long n = (long long)fy * fx;
    GRID_STRIDE(i, n) {
        const int y = (int)(i / fx);
        const int x = (int)(i % fx);
        if (y == nyq_y || x == nyq_x) {
            wf[i] = make_float2(0.0f, 0.0f);
        } else {
            const float2 v = wf[i];
            const float2 w = make_float2(v.x / angles, v.y / angles);
            const float2 t = scaled(w, g[i]);
            wf[i] = make_float2(w.x - t.y, w.y + t.x);
        }
    }
}

// out = max(Re(v)·s, 0): the SIM image after the unnormalised inverse FFT (s = 1/(fy·fx)).
extern "C" __global__ void real_part_clipped(const float2* v, float* out, long long n, float s) {
    GRID_STRIDE(i, n) {
        out[i] = fmaxf(v[i].x * s, 0.0f);
    }
}

// Widefield = Re(v)·s, Wiener-filtered widefield = max(Im(v)·s, 0) of the packed spectrum's
// unnormalised inverse FFT.
extern "C" __global__ void split_packed(const float2* v, float* wf, float* wwf, long long n,
                                        float s) {
    GRID_STRIDE(i, n) {
        const float2 a = v[i];
        wf[i] = a.x * s;
        wwf[i] = fmaxf(a.y * s, 0.0f);
    }
}
