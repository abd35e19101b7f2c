package fluorecon;

/**
 * JNI entry points of the denoising engine ({@code src/jni/native_nn.rs}): Noise2Void and CARE training,
 * restoring with a model folder. Volumes are {@code nz} planes of {@code ny * nx} floats, x fastest. Each call
 * takes its options as one JSON object ({@link NativeOptions}): {@code voxel_nm} ({x, y, z}), {@code device}
 * ("auto", "cpu" or "cuda[:N]"; the networks run on the CPU in this version and a CUDA request is logged with
 * the reason), and for training {@code training} ({@link Denoising.Training#options}). Call
 * {@link Native#ensureLoaded()} first.
 */
final class NativeNn {
    private NativeNn() {
    }

    /**
     * Trains Noise2Void on one volume; saves the model in {@code model_dir} unless it is null; with
     * {@code denoise} returns the denoised volume (else an empty array). Options besides the common ones:
     * {@code masked_percent}, {@code n2v2}, {@code model_dir}, {@code denoise}. Epoch losses go to
     * {@link TrainingProgress#epoch} when the listener is one.
     */
    static native float[] n2v(float[] image, int nx, int ny, int nz, String options, ProgressListener listener)
            throws FluoreconException;

    /**
     * Trains CARE on one pair of volumes of equal size and saves the model in {@code model_dir}. Options
     * besides the common ones: {@code probabilistic}, {@code model_dir}.
     */
    static native void careTrain(float[] low, float[] high, int nx, int ny, int nz, String options,
            ProgressListener listener) throws FluoreconException;

    /**
     * Restores one volume with a model folder (Noise2Void or CARE). Returns {restored}, or {restored,
     * uncertainty} (the standard deviation per pixel) when {@code uncertainty} is set; each nx*ny*nz floats,
     * x fastest. Options besides
     * {@code voxel_nm} and {@code device}: {@code model_dir}, {@code uncertainty}, {@code tile} (tile side in
     * pixels, 0 = chosen from a memory estimate).
     */
    static native float[][] restore(float[] image, int nx, int ny, int nz, String options, ProgressListener listener)
            throws FluoreconException;

    /**
     * Classical denoising of one volume (a stack plane by plane): generalised Anscombe transform with the
     * Poisson-Gaussian noise of {@code camera} ({@code gain} ADU/photon, {@code offset} and {@code read_noise}
     * ADU), or estimated from the volume when {@code camera} is null, then BM3D. The noise model used goes to
     * the log. Options: {@code voxel_nm}, {@code camera}.
     */
    static native float[] denoiseClassical(float[] image, int nx, int ny, int nz, String options,
            ProgressListener listener) throws FluoreconException;

    /** The model folder's model.json, checked and pretty-printed. */
    static native String modelInfo(String modelDir) throws FluoreconException;
}
