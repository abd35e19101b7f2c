package fluorecon;

/**
 * JNI entry points of Deep-STORM ({@code src/jni/native_deepstorm.rs}). Call {@link Native#ensureLoaded()}
 * first. Localizations are 8 floats each, as in {@link NativeSmlm}.
 */
final class NativeDeepStorm {
    private NativeDeepStorm() {
    }

    /** One line describing a model folder (empty path: the bundled model). */
    static native String modelInfo(String modelDir) throws FluoreconException;

    /**
     * A Deep-STORM run over frames of nx × ny raw pixels (ADU); photons = (ADU − offset) · e⁻/ADU / EM gain.
     *
     * @param options {@code model_dir} (a model folder, or null for the model bundled with Fluorecon),
     *                {@code pixel_nm}, {@code camera} ({@link Localizations.Camera#options}), {@code threshold}
     *                (detection threshold, fraction of one molecule's peak; ≤ 0 for the model's own),
     *                {@code device} ("auto", "cpu" or "cuda")
     * @return a handle for {@link #deepstormPush} and {@link #deepstormFinish} (or {@link #deepstormFree})
     */
    static native long deepstormNew(int nx, int ny, String options, ProgressListener listener)
            throws FluoreconException;

    /** Runs the network on whole frames (any number, x fastest, frame after frame) and localizes. */
    static native void deepstormPush(long handle, float[] frames, ProgressListener listener)
            throws FluoreconException;

    /** Fine pixels per camera pixel of the density map. */
    static native int deepstormUpsampling(long handle) throws FluoreconException;

    /**
     * The localizations; fills {@code density} ((ny·up) rows of (nx·up) values, molecules per fine pixel
     * summed over the frames) when it is not null. Frees the handle.
     */
    static native float[] deepstormFinish(long handle, float[] density) throws FluoreconException;

    /** Frees an unfinished run. */
    static native void deepstormFree(long handle);
}
