// Richardson–Lucy element-wise steps on the GPU, compiled at run time with NVRTC
// (src/deconv/rl_cuda.rs). Volumes are (nz, ny, nx) floats, x fastest; spectra are the matching
// half spectra (nz, ny, nx/2 + 1) of interleaved complex floats. Every kernel loops over its
// elements with a grid stride, so any launch size covers any volume. The arithmetic follows
// the CPU path in src/deconv/rl.rs and src/deconv/tv.rs line by line.

// Adds (a, b), summed over the whole block, to sums[0], sums[1]. Every thread of the block
// must call it.
__device__ void block_add2(double a, double b, double* sums) {
    __shared__ double sa[32];
    __shared__ double sb[32];
    for (int o = 16; o > 0; o >>= 1) {
        a += __shfl_down_sync(0xffffffffu, a, o);
        b += __shfl_down_sync(0xffffffffu, b, o);
    }
    const int lane = threadIdx.x & 31;
    const int warp = threadIdx.x >> 5;
    if (lane == 0) {
        sa[warp] = a;
        sb[warp] = b;
    }
    __syncthreads();
    if (warp == 0) {
        const int warps = (blockDim.x + 31) >> 5;
        a = lane < warps ? sa[lane] : 0.0;
        b = lane < warps ? sb[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) {
            a += __shfl_down_sync(0xffffffffu, a, o);
            b += __shfl_down_sync(0xffffffffu, b, o);
        }
        if (lane == 0) {
            atomicAdd(&sums[0], a);
            atomicAdd(&sums[1], b);
        }
    }
}

#define GRID_STRIDE(i, n) \
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); \
         i += (long long)gridDim.x * blockDim.x)

// out = 1 inside the field of view (z < m0, y < m1, x < m2 of the grid (·, n1, n2)), else 0.
extern "C" __global__ void fov_mask(float* out, long long n, int n1, int n2, int m0, int m1,
                                    int m2) {
    GRID_STRIDE(i, n) {
        const long long x = i % n2;
        const long long y = (i / n2) % n1;
        const long long z = i / ((long long)n1 * n2);
        out[i] = (z < m0 && y < m1 && x < m2) ? 1.0f : 0.0f;
    }
}

// spec ·= otf (or its conjugate): n complex values.
extern "C" __global__ void complex_multiply(float2* spec, const float2* otf, long long n,
                                            int conjugate) {
    GRID_STRIDE(i, n) {
        const float2 s = spec[i];
        float2 h = otf[i];
        if (conjugate) {
            h.y = -h.y;
        }
        spec[i] = make_float2(s.x * h.x - s.y * h.y, s.x * h.y + s.y * h.x);
    }
}

// Starting estimate: `mean` where the PSF reaches the field of view (normal ≥ floor), 0
// elsewhere; afterwards normal is only a divisor, so voxels out of reach get 1. With no
// normal (circulant boundaries) the estimate is `mean` everywhere.
extern "C" __global__ void init_estimate(float* normal, float* x, long long n, float mean,
                                         float normal_floor) {
    GRID_STRIDE(i, n) {
        if (normal) {
            const float v = normal[i];
            const bool inside = v >= normal_floor;
            x[i] = inside ? mean : 0.0f;
            normal[i] = inside ? v : 1.0f;
        } else {
            x[i] = mean;
        }
    }
}

// hx = y / hx inside the field of view (0 where hx ≤ eps and outside); y is the observed
// field of view (m0, m1, m2), negative values counted as 0.
extern "C" __global__ void ratio(float* hx, const float* observed, long long n, int n1, int n2,
                                 int m0, int m1, int m2, float eps) {
    GRID_STRIDE(i, n) {
        const long long x = i % n2;
        const long long y = (i / n2) % n1;
        const long long z = i / ((long long)n1 * n2);
        float r = 0.0f;
        if (z < m0 && y < m1 && x < m2) {
            const float h = hx[i];
            const float obs = observed[(z * m1 + y) * m2 + x];
            r = h > eps ? fmaxf(obs, 0.0f) / h : 0.0f;
        }
        hx[i] = r;
    }
}

// Unit gradient direction (forward differences, 0 past the last voxel, z step scaled).
__device__ float3 unit_gradient(const float* x, int z, int y, int xx, int nz, int ny, int nx,
                                float z_aspect) {
    const long long plane = (long long)ny * nx;
    const long long i = z * plane + (long long)y * nx + xx;
    const float v = x[i];
    const float gx = xx + 1 < nx ? x[i + 1] - v : 0.0f;
    const float gy = y + 1 < ny ? x[i + nx] - v : 0.0f;
    const float gz = z + 1 < nz ? (x[i + plane] - v) / z_aspect : 0.0f;
    const float norm = sqrtf(gx * gx + gy * gy + gz * gz);
    if (norm > 0.0f) {
        return make_float3(gx / norm, gy / norm, gz / norm);
    }
    return make_float3(0.0f, 0.0f, 0.0f);
}

// out = max(1 − λ·div(∇x/|∇x|), min_denominator) (RL-TV, Dey et al. 2006).
extern "C" __global__ void tv_denominator(const float* x, float* out, int nz, int ny, int nx,
                                          float lambda, float z_aspect, float min_denominator) {
    const long long n = (long long)nz * ny * nx;
    GRID_STRIDE(i, n) {
        const int xx = (int)(i % nx);
        const int y = (int)((i / nx) % ny);
        const int z = (int)(i / ((long long)ny * nx));
        const float3 u = unit_gradient(x, z, y, xx, nz, ny, nx, z_aspect);
        float div = u.x + u.y + u.z / z_aspect;
        if (xx > 0) {
            div -= unit_gradient(x, z, y, xx - 1, nz, ny, nx, z_aspect).x;
        }
        if (y > 0) {
            div -= unit_gradient(x, z, y - 1, xx, nz, ny, nx, z_aspect).y;
        }
        if (z > 0) {
            div -= unit_gradient(x, z - 1, y, xx, nz, ny, nx, z_aspect).z / z_aspect;
        }
        out[i] = fmaxf(1.0f - lambda * div, min_denominator);
    }
}

// corr = x · corr / (normal · tv), 0 where not finite or not positive; normal and tv may be
// null (1). With sums, adds Σ(new − x)² and Σx² for the relative change.
extern "C" __global__ void rl_update(float* corr, const float* x, const float* normal,
                                     const float* tv, long long n, double* sums) {
    double d2 = 0.0;
    double n2 = 0.0;
    GRID_STRIDE(i, n) {
        float d = normal ? normal[i] : 1.0f;
        if (tv) {
            d *= tv[i];
        }
        const float old = x[i];
        const float v = old * corr[i] / d;
        const float next = (isfinite(v) && v > 0.0f) ? v : 0.0f;
        corr[i] = next;
        const double diff = (double)next - (double)old;
        d2 += diff * diff;
        n2 += (double)old * (double)old;
    }
    if (sums) {
        block_add2(d2, n2, sums);
    }
}

// Biggs–Andrews: sums += (Σ g·g_prev, Σ g_prev²) with g = x − y_k.
extern "C" __global__ void accel_dots(const float* x, const float* y_k, const float* g_prev,
                                      long long n, double* sums) {
    double num = 0.0;
    double den = 0.0;
    GRID_STRIDE(i, n) {
        const double g = (double)(x[i] - y_k[i]);
        const double gp = (double)g_prev[i];
        num += g * gp;
        den += gp * gp;
    }
    block_add2(num, den, sums);
}

// Biggs–Andrews step: g_prev = x − y_k; x = max(x + α(x − prev), 0); prev = x (before).
extern "C" __global__ void accel_step(float* x, const float* y_k, float* prev, float* g_prev,
                                      long long n, float alpha) {
    GRID_STRIDE(i, n) {
        const float next = x[i];
        g_prev[i] = next - y_k[i];
        const float predicted = next + alpha * (next - prev[i]);
        prev[i] = next;
        x[i] = fmaxf(predicted, 0.0f);
    }
}
