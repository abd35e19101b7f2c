package fluorecon;

/**
 * JNI entry points of localization microscopy ({@code src/jni/native_smlm.rs}). Call
 * {@link Native#ensureLoaded()} first.
 *
 * <p>A localization is 8 floats: frame (from 1), x [nm], y [nm], sigma [nm], intensity [photon],
 * offset [photon], bkgstd [photon], uncertainty [nm]. Positions are measured from the image's
 * top-left corner (the centre of pixel i is at (i + 0.5) pixel sizes).
 */
final class NativeSmlm {
    /** Floats per localization. */
    static final int FIELDS = 8;

    private NativeSmlm() {
    }

    /**
     * A localizer for frames of nx × ny raw pixels (ADU); photons = (ADU − offset) · e⁻/ADU / EM gain.
     *
     * @param options {@code pixel_nm}, {@code camera} ({@link Localizations.Camera#options}),
     *                {@code threshold} (detection threshold, multiple of std(Wave.F1)), {@code mle} (true:
     *                Poisson MLE; false: least squares), {@code sigma_nm} (starting PSF σ), {@code fit_radius}
     *                (fit window half-size, pixels), {@code sigma_tolerance} (reject fits whose σ is further
     *                than this fraction from the typical σ; 0 = off), {@code device} ("auto", "cpu" or
     *                "cuda[:N]"; the first frames pushed log the device that fits them, and why when CUDA was
     *                asked for but is not used)
     * @return a handle for {@link #localizerPush} and {@link #localizerFinish} (or {@link #localizerFree})
     */
    static native long localizerNew(int nx, int ny, String options) throws FluoreconException;

    /** Localizes whole frames (any number, x fastest, frame after frame). */
    static native void localizerPush(long handle, float[] frames, ProgressListener listener)
            throws FluoreconException;

    /** Localizes what is left and frees the localizer. */
    static native float[] localizerFinish(long handle, ProgressListener listener) throws FluoreconException;

    /** Frees an unfinished localizer. */
    static native void localizerFree(long handle);

    /**
     * Rendered image, (height·m) rows of (width·m) pixels, each localization adding 1 to its sum. Options:
     * {@code width_px}, {@code height_px} (camera pixels), {@code camera_pixel_nm}, {@code magnification} (m),
     * {@code histogram} (false: Gaussians).
     */
    static native float[] render(float[] locs, String options) throws FluoreconException;

    /**
     * The localizations with the drift (cross-correlation of blocks of frames) removed. Options:
     * {@code frames_per_block}.
     */
    static native float[] correctDrift(float[] locs, String options, ProgressListener listener)
            throws FluoreconException;

    /** Reads a ThunderSTORM CSV. */
    static native float[] readCsv(String path) throws FluoreconException;

    /** Writes a ThunderSTORM CSV. */
    static native void writeCsv(String path, float[] locs) throws FluoreconException;
}
