package fluorecon;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;
import static org.junit.Assume.assumeTrue;

import java.io.File;

import org.junit.BeforeClass;
import org.junit.Test;

/** Calls the Rust engine through JNI; skipped while ../target/release/libfluorecon.so is missing. */
public class NativeTest {
    private static final int NX = 32;
    private static final int NY = 32;
    private static final int NZ = 16;
    private static final int PN = 9;

    @BeforeClass
    public static void loadLibrary() throws FluoreconException {
        String path = System.getProperty(NativeLoader.PROPERTY);
        assumeTrue("no native library at " + path, path != null && new File(path).isFile());
        Native.ensureLoaded();
    }

    @Test
    public void reportsVersionAndInfo() {
        assertFalse(Native.version().isEmpty());
        assertTrue(Native.info(), Native.info().contains(Native.version()));
    }

    private static String psfOptions(String model) {
        return new NativeOptions().put("model", model).put("na", 1.4).put("wavelength_nm", 520)
                .put("immersion_index", 1.518).put("pixel_size_nm", 100).put("z_step_nm", 200).toString();
    }

    private static String rlOptions(int iterations) {
        return new NativeOptions().put("measured_psf", false).put("iterations", iterations).put("tv_lambda", 0)
                .put("acceleration", false).put("circulant", false).put("tolerance", 0)
                .put("voxel_nm", new double[] {100, 100, 200}).put("device", "cpu").toString();
    }

    @Test
    public void generatesNormalisedModelPsfs() throws FluoreconException {
        for (String model : new String[] {"gaussian", "born-wolf"}) {
            int[] size = Native.suggestPsfSize(psfOptions(model), 256, 256, 40);
            assertEquals(3, size.length);
            for (int n : size) {
                assertTrue(model + " size " + n, n > 0 && n % 2 == 1);
            }
            float[] psf = Native.generatePsf(psfOptions(model), 15, 15, 9);
            assertEquals(15 * 15 * 9, psf.length);
            double sum = 0;
            int peak = 0;
            for (int i = 0; i < psf.length; i++) {
                sum += psf[i];
                if (psf[i] > psf[peak]) {
                    peak = i;
                }
            }
            assertEquals(model, 1.0, sum, 1e-4);
            assertEquals(model + ": peak at the centre", (4 * 15 + 7) * 15 + 7, peak);
        }
    }

    @Test
    public void rejectsAnUnknownModelWithAMessage() {
        try {
            Native.generatePsf(psfOptions("airy"), 15, 15, 9);
            fail("unknown model accepted");
        } catch (FluoreconException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("airy"));
        }
    }

    /** Every call's options are checked field by field: a misspelt or missing key is named. */
    @Test
    public void rejectsAMisspeltOrMissingOptionWithItsName() {
        String misspelt = rlOptions(5).replace("\"tv_lambda\"", "\"tv_lamda\"");
        try {
            Native.deconvolve(new float[8], 2, 2, 2, new float[1], 1, 1, 1, misspelt, null);
            fail("misspelt option accepted");
        } catch (FluoreconException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("unknown field `tv_lamda`"));
        }
        try {
            Native.generatePsf("{\"model\":\"gaussian\",\"na\":1.4}", 15, 15, 9);
            fail("incomplete options accepted");
        } catch (FluoreconException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("missing field `wavelength_nm`"));
        }
    }

    @Test
    public void deconvolutionComesCloserToTheTruth() throws FluoreconException {
        float[] truth = truth();
        float[] psf = gaussianPsf();
        float[] blurred = blur(truth, psf);
        float[] input = blurred.clone();
        float[] restored = Native.deconvolve(input, NX, NY, NZ, psf, PN, PN, PN, rlOptions(30),
                new Listener(Integer.MAX_VALUE));
        assertEquals(truth.length, restored.length);
        assertArrayEquals("input modified", blurred, input, 0f);
        double before = rmsError(blurred, truth);
        double after = rmsError(restored, truth);
        assertTrue("RMS error " + after + " after RL, " + before + " before", after < 0.9 * before);
    }

    @Test
    public void cancelStopsWithCancelledExceptionAndKeepsTheInput() throws FluoreconException {
        float[] input = blur(truth(), gaussianPsf());
        float[] copy = input.clone();
        Listener listener = new Listener(2);
        try {
            Native.deconvolve(input, NX, NY, NZ, gaussianPsf(), PN, PN, PN, rlOptions(50), listener);
            fail("not cancelled");
        } catch (CancelledException e) {
            assertTrue(listener.fractions >= 2);
        }
        assertArrayEquals(copy, input, 0f);
    }

    /** Nine 64×64 frames of seeded noise (no stripes), as a raw SIM stack. */
    private static float[] noiseFrames(int frames) {
        java.util.Random random = new java.util.Random(5);
        float[] raw = new float[frames * 64 * 64];
        for (int i = 0; i < raw.length; i++) {
            raw[i] = 100 + 10 * (float) random.nextGaussian();
        }
        return raw;
    }

    private static SimResult sim(float[] raw, int frames, ProgressListener listener) throws FluoreconException {
        String options = new NativeOptions().put("pixel_size_nm", 80).put("na", 1.2).put("wavelength_nm", 525)
                .put("angles", 3).put("phases", 3).put("order", "PAZ").put("time_points", 1)
                .put("estimate_per_plane", false).put("wiener", 0.05).put("apodization_cutoff", 2)
                .put("apodization_bend", 0.9).put("otf_attenuation", 0.3).put("background", 100).put("taper_px", 12)
                .put("zero_order_strength", 0.95).put("allow_failed_estimate", false)
                .put("fourier_view", false).put("device", "auto").toString();
        return Native.simReconstruct(raw, 64, 64, frames, null, 0, 0, 0, options, listener);
    }

    @Test
    public void simCancelStopsWithCancelledExceptionAndKeepsTheInput() throws FluoreconException {
        float[] raw = noiseFrames(9);
        float[] copy = raw.clone();
        try {
            sim(raw, 9, new Listener(0));
            fail("not cancelled");
        } catch (CancelledException e) {
            assertArrayEquals(copy, raw, 0f);
        }
    }

    @Test
    public void simRejectsAWrongFrameCountAndAStackWithoutStripes() {
        try {
            sim(noiseFrames(8), 8, null);
            fail("8 frames accepted");
        } catch (FluoreconException e) {
            assertEquals("SIM stack has 8 frames; 3 angles × 3 phases needs a multiple of 9", e.getMessage());
        }
        try {
            sim(noiseFrames(9), 9, null);
            fail("noise accepted");
        } catch (FluoreconException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("no stripe pattern"));
        }
    }

    /** Counts progress calls; cancels once {@code fraction()} was called {@code cancelAfter} times. */
    private static final class Listener implements ProgressListener {
        private final int cancelAfter;
        int fractions;

        Listener(int cancelAfter) {
            this.cancelAfter = cancelAfter;
        }

        @Override
        public void fraction(double f) {
            assertTrue("fraction " + f, f >= 0 && f <= 1);
            fractions++;
        }

        @Override
        public void status(String message) {
        }

        @Override
        public void log(String message) {
        }

        @Override
        public boolean cancelled() {
            return fractions >= cancelAfter;
        }
    }

    /** A background of 1 with a few bright points and a small cube, away from the edges. */
    private static float[] truth() {
        float[] v = new float[NX * NY * NZ];
        java.util.Arrays.fill(v, 1f);
        int[][] points = {{8, 8, 6}, {20, 11, 8}, {12, 22, 9}, {24, 24, 7}};
        for (int[] p : points) {
            v[(p[2] * NY + p[1]) * NX + p[0]] = 500f;
        }
        for (int z = 7; z < 10; z++) {
            for (int y = 14; y < 18; y++) {
                for (int x = 14; x < 18; x++) {
                    v[(z * NY + y) * NX + x] = 100f;
                }
            }
        }
        return v;
    }

    /** A normalised anisotropic Gaussian, PN³ voxels, centred. */
    private static float[] gaussianPsf() {
        float[] psf = new float[PN * PN * PN];
        int c = PN / 2;
        double sum = 0;
        for (int z = 0; z < PN; z++) {
            for (int y = 0; y < PN; y++) {
                for (int x = 0; x < PN; x++) {
                    double r2 = ((x - c) * (x - c) + (y - c) * (y - c)) / (2 * 1.2 * 1.2)
                            + (z - c) * (z - c) / (2 * 2.0 * 2.0);
                    psf[(z * PN + y) * PN + x] = (float) Math.exp(-r2);
                    sum += psf[(z * PN + y) * PN + x];
                }
            }
        }
        for (int i = 0; i < psf.length; i++) {
            psf[i] /= sum;
        }
        return psf;
    }

    /** Convolution with edges clamped to the nearest voxel (a slow, obvious reference). */
    private static float[] blur(float[] v, float[] psf) {
        float[] out = new float[v.length];
        int c = PN / 2;
        for (int z = 0; z < NZ; z++) {
            for (int y = 0; y < NY; y++) {
                for (int x = 0; x < NX; x++) {
                    double s = 0;
                    for (int k = 0; k < PN; k++) {
                        int zz = clamp(z - (k - c), NZ);
                        for (int j = 0; j < PN; j++) {
                            int yy = clamp(y - (j - c), NY);
                            for (int i = 0; i < PN; i++) {
                                int xx = clamp(x - (i - c), NX);
                                s += psf[(k * PN + j) * PN + i] * v[(zz * NY + yy) * NX + xx];
                            }
                        }
                    }
                    out[(z * NY + y) * NX + x] = (float) s;
                }
            }
        }
        return out;
    }

    private static int clamp(int i, int n) {
        return Math.max(0, Math.min(n - 1, i));
    }

    private static double rmsError(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += (a[i] - b[i]) * (double) (a[i] - b[i]);
        }
        return Math.sqrt(s / a.length);
    }
}
