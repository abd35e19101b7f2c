package fluorecon;

/**
 * JNI entry points of the denoising engine ({@code src/jni/native_nn.rs}): Noise2Void and CARE training,
 * restoring with a model folder. Volumes are {@code nz} planes of {@code ny * nx} floats, x fastest;
 * voxel sizes in nm. Options are JSON objects whose fields follow the engine's {@code N2vOptions} /
 * {@code CareOptions} (missing fields take the engine's defaults). Call
 * {@link Native#ensureLoaded()} first. {@code device} is "auto", "cpu" or "cuda[:N]" (null = auto); the
 * networks run on the CPU in this version and a CUDA request is logged with the reason.
 */
final class NativeNn {
    private NativeNn() {
    }

    /**
     * Trains Noise2Void on one volume; saves the model when {@code modelDir} is not null; with
     * {@code denoise} returns the denoised volume (else an empty array). Epoch losses go to
     * {@link TrainingProgress#epoch} when the listener is one.
     */
    static native float[] n2v(float[] image, int nx, int ny, int nz, float voxelX, float voxelY, float voxelZ,
            String optionsJson, String modelDir, boolean denoise, String device, ProgressListener listener)
            throws FluoreconException;

    /** Trains CARE on one pair of volumes of equal size and saves the model in {@code modelDir}. */
    static native void careTrain(float[] low, float[] high, int nx, int ny, int nz, float voxelX, float voxelY,
            float voxelZ, String optionsJson, String modelDir, String device, ProgressListener listener)
            throws FluoreconException;

    /**
     * Restores one volume with a model folder (Noise2Void or CARE). Returns nx*ny*nz floats, followed
     * by as many for the uncertainty (standard deviation) when {@code uncertainty} is set.
     *
     * @param tile tile side in pixels, 0 = chosen from a memory estimate
     */
    static native float[] restore(float[] image, int nx, int ny, int nz, float voxelX, float voxelY, float voxelZ,
            String modelDir, boolean uncertainty, int tile, String device, ProgressListener listener)
            throws FluoreconException;

    /** The model folder's model.json, checked and pretty-printed. */
    static native String modelInfo(String modelDir) throws FluoreconException;
}
