package fluorecon;

/**
 * The JNI entry points of the Rust engine ({@code src/jni/native.rs}). Call {@link #ensureLoaded()}
 * before any other method.
 *
 * <p>Conventions: a volume is {@code nz} planes of {@code ny * nx} floats, x fastest (ImageJ stack
 * order); lengths are in nm unless stated. Every engine error arrives as a
 * {@link FluoreconException} whose message is meant for the user; a cancel as a
 * {@link CancelledException}. Input arrays are never modified.
 */
public final class Native {
    private Native() {
    }

    /**
     * Loads the native library once (see {@link NativeLoader} for where it is looked for).
     *
     * @throws FluoreconException saying why it could not be loaded, e.g. on another platform than
     *                            Linux x86-64
     */
    static void ensureLoaded() throws FluoreconException {
        NativeLoader.ensureLoaded();
    }

    /** @return the engine's version, e.g. "0.1.0" */
    static native String version();

    /** Multi-line "key: value" text: version, build features, devices found. */
    static native String info();

    /**
     * Richardson–Lucy deconvolution of ONE volume.
     *
     * @param image   nz planes of ny*nx floats, x fastest (stack order)
     * @param psf     the PSF, likewise (pnx, pny, pnz)
     * @param options {@code measured_psf} (true: the engine cleans the PSF: background clip, centring,
     *                normalise; false: it is used as given, a model PSF), {@code iterations} (at least 1),
     *                {@code tv_lambda} (total-variation weight, 0 for plain RL), {@code acceleration},
     *                {@code circulant} (periodic boundaries; false: non-circulant edge handling),
     *                {@code tolerance} (stop early when the relative change per iteration falls below it;
     *                0 runs all iterations), {@code voxel_nm} ({x, y, z}), {@code device} ("auto", "cpu"
     *                or "cuda[:N]"), see {@link NativeOptions}
     * @param listener receives progress and log lines; asked whether to cancel
     * @return a new float[nx*ny*nz]
     * @throws FluoreconException (message for the user) or {@link CancelledException}
     */
    static native float[] deconvolve(float[] image, int nx, int ny, int nz, float[] psf, int pnx, int pny,
            int pnz, String options, ProgressListener listener) throws FluoreconException;

    /**
     * Computes a model PSF.
     *
     * @param options the PSF model's parameters, see {@link Optics#psfOptions}
     * @return float[nx*ny*nz] (nx, ny, nz odd), x fastest, summing to 1
     */
    static native float[] generatePsf(String options, int nx, int ny, int nz) throws FluoreconException;

    /** Suggested PSF size {nx, ny, nz} (all odd) for an image of the given size; options as for generatePsf. */
    static native int[] suggestPsfSize(String options, int imageNx, int imageNy, int imageNz)
            throws FluoreconException;

    /**
     * 2D SIM reconstruction of one channel's raw frames.
     *
     * @param raw     {@code frames} planes of ny*nx floats: time points (slowest), each z × angles × phases
     *                frames in the given order
     * @param psf     a measured PSF (pnx, pny, pnz) whose OTF replaces the model, or null
     * @param options {@code pixel_size_nm} (camera pixel in the sample), {@code na}, {@code wavelength_nm},
     *                {@code angles}, {@code phases}, {@code order} ("PAZ", "PZA" or "ZAP"),
     *                {@code time_points} (≥ 1), {@code estimate_per_plane} (the pattern on every plane
     *                rather than once), {@code wiener}, {@code apodization_cutoff}, {@code apodization_bend},
     *                {@code otf_attenuation}, {@code background} (camera background subtracted from the raw
     *                counts), {@code taper_px} (cosine edge taper width, raw pixels), {@code fourier_view}
     *                (also return the Fourier view of the reference plane), {@code device} ("auto", "cpu" or
     *                "cuda[:N]": the Wiener reconstruction on the GPU in the CUDA build; a CUDA request that
     *                cannot be honoured is logged with the reason)
     * @return the images and the pattern parameters
     */
    static native SimResult simReconstruct(float[] raw, int nx, int ny, int frames, float[] psf, int pnx,
            int pny, int pnz, String options, ProgressListener listener) throws FluoreconException;
}
