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
     * @param image        nz planes of ny*nx floats, x fastest (stack order)
     * @param psf          the PSF, likewise (pnx, pny, pnz)
     * @param measuredPsf  true: the engine cleans the PSF (background clip, centring, normalise);
     *                     false: it is used as given (a model PSF)
     * @param iterations   number of RL iterations, at least 1
     * @param tvLambda     total-variation regularisation weight, 0 for plain RL
     * @param acceleration true for vector-extrapolated (accelerated) RL
     * @param circulant    true: periodic boundaries; false: non-circulant edge handling
     * @param tolerance    stop early when the relative change per iteration falls below it;
     *                     0 runs all iterations
     * @param voxelX       voxel width in nm
     * @param voxelY       voxel height in nm
     * @param voxelZ       voxel depth (z step) in nm
     * @param device       "auto", "cpu" or "cuda[:N]"
     * @param listener     receives progress and log lines; asked whether to cancel
     * @return a new float[nx*ny*nz]
     * @throws FluoreconException (message for the user) or {@link CancelledException}
     */
    static native float[] deconvolve(float[] image, int nx, int ny, int nz,
            float[] psf, int pnx, int pny, int pnz, boolean measuredPsf,
            int iterations, float tvLambda, boolean acceleration, boolean circulant, float tolerance,
            float voxelX, float voxelY, float voxelZ, String device, ProgressListener listener)
            throws FluoreconException;

    /**
     * Computes a model PSF.
     *
     * @param model "gaussian" or "born-wolf"
     * @return float[nx*ny*nz] (nx, ny, nz odd), x fastest, summing to 1
     */
    static native float[] generatePsf(String model, double na, double wavelengthNm, double immersionIndex,
            double pixelSizeNm, double zStepNm, int nx, int ny, int nz) throws FluoreconException;

    /** Suggested PSF size {nx, ny, nz} (all odd) for an image of the given size. */
    static native int[] suggestPsfSize(String model, double na, double wavelengthNm, double immersionIndex,
            double pixelSizeNm, double zStepNm, int imageNx, int imageNy, int imageNz) throws FluoreconException;

    /** Values per pattern direction in the parameter array of {@link #simReconstruct}. */
    static final int SIM_PARAM_FIELDS = 11;

    /**
     * 2D SIM reconstruction of one channel's raw frames.
     *
     * @param raw            {@code frames} planes of ny*nx floats: time points (slowest), each
     *                       z × angles × phases frames in the given order
     * @param pixelSizeNm    camera pixel size in the sample
     * @param order          "PAZ", "PZA" or "ZAP"
     * @param timePoints     number of time points (≥ 1)
     * @param perPlane       estimate the pattern on every plane rather than once
     * @param psf            a measured PSF (pnx, pny, pnz) whose OTF replaces the model, or null
     * @param background     camera background subtracted from the raw counts
     * @param taperPx        cosine edge taper width (raw pixels)
     * @param fourier        also return the Fourier view of the reference plane
     * @param device         "auto", "cpu" or "cuda[:N]" (the Wiener reconstruction on the GPU in
     *                       the CUDA build; a CUDA request that cannot be honoured is logged
     *                       with the reason)
     * @return {float[] sim, float[] widefield, float[] wienerWidefield} (each planes × 2ny × 2nx,
     *         time slowest), double[] parameters ({@link #SIM_PARAM_FIELDS} per direction: k0 x, k0 y
     *         [px], k0 x, k0 y [1/µm], direction [deg], line spacing [nm], phase [rad], modulation,
     *         modulation used, peak ratio, flags (1 no stripes, 2 low modulation, 4 implausible k0,
     *         8 uneven angles); first the reference estimate, then one set per output plane),
     *         float[] Fourier view (2ny × 2nx, log10(1 + |FFT|), zero frequency at (nx, ny)) or
     *         null, int[] {z planes per time point}
     */
    static native Object[] simReconstruct(float[] raw, int nx, int ny, int frames,
            double pixelSizeNm, double na, double wavelengthNm, int angles, int phases, String order,
            int timePoints, boolean perPlane, double wiener, double apodizationCutoff, double apodizationBend,
            double otfAttenuation, float[] psf, int pnx, int pny, int pnz, float background, int taperPx,
            boolean fourier, String device, ProgressListener listener) throws FluoreconException;
}
