package fluorecon;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;
import static org.junit.Assume.assumeTrue;

import java.io.File;
import java.nio.file.Files;
import java.util.Random;

import org.junit.BeforeClass;
import org.junit.Test;

/** The denoising engine through JNI: tiny trainings, model folders, bad inputs. */
public class NativeNnTest {
    private static final int N = 64;

    @BeforeClass
    public static void loadLibrary() throws FluoreconException {
        String path = System.getProperty(NativeLoader.PROPERTY);
        assumeTrue("no native library at " + path, path != null && new File(path).isFile());
        Native.ensureLoaded();
    }

    private static float[] noisy(long seed) {
        Random r = new Random(seed);
        float[] v = new float[N * N];
        for (int y = 0; y < N; y++) {
            for (int x = 0; x < N; x++) {
                v[y * N + x] = (float) (10 + 5 * Math.sin(x / 5.0) * Math.cos(y / 7.0) + r.nextGaussian());
            }
        }
        return v;
    }

    private static final double[] VOXEL = {100, 100, 100};

    private static Denoising.Training tiny(String device) {
        Denoising.Training t = new Denoising.Training(3);
        t.epochs = 2;
        t.steps = 2;
        t.batch = 4;
        t.patch = 32;
        t.filters = 4;
        t.maskedPercent = 2;
        t.device = device;
        return t;
    }

    private static String restoreOptions(String model, boolean uncertainty, String device) {
        return new NativeOptions().put("voxel_nm", VOXEL).put("model_dir", model).put("uncertainty", uncertainty)
                .put("tile", 0).put("device", device).toString();
    }

    /** Records the epochs the engine reports. */
    static final class Recorder extends LogRecorder {
        int epochs;

        public void epoch(int epoch, int total, double loss, double validationLoss, double secondsLeft) {
            epochs++;
            assertTrue(loss > 0 && validationLoss > 0 && total == 2);
        }
    }

    @Test
    public void trainsSavesAndRestores() throws Exception {
        File dir = Files.createTempDirectory("fluorecon-nn").toFile();
        File model = new File(dir, "model");
        float[] image = noisy(1);
        float[] copy = image.clone();
        Recorder rec = new Recorder();
        float[] denoised = NativeNn.n2v(image, N, N, 1, tiny("cuda").n2vOptions("tiny", VOXEL, model.getPath(), true),
                rec);
        assertEquals(N * N, denoised.length);
        assertEquals(2, rec.epochs);
        // The networks run on the CPU: a CUDA request says why (training and denoising), then runs.
        assertTrue(rec.lines.toString(), rec.has("Warning: CUDA:0 was requested but"));
        assertTrue(rec.lines.toString(), rec.mentions("on CPU ("));
        assertTrue("input unchanged", java.util.Arrays.equals(image, copy));
        assertTrue(new File(model, "model.json").isFile() && new File(model, "model.safetensors").isFile());
        assertTrue(NativeNn.modelInfo(model.getPath()).contains("\"method\": \"n2v\""));
        LogRecorder cpu = new LogRecorder();
        float[][] out = NativeNn.restore(image, N, N, 1, restoreOptions(model.getPath(), false, "cpu"), cpu);
        assertEquals("no uncertainty image unless asked for", 1, out.length);
        float[] restored = out[0];
        assertTrue("the saved model restores as the trained one", java.util.Arrays.equals(denoised, restored));
        assertTrue(cpu.lines.toString(), cpu.has("Restoring with model 'tiny' (n2v 2D) on CPU ("));
        assertTrue("no warning for cpu: " + cpu.lines, !cpu.mentions("Warning"));
        try {
            NativeNn.restore(image, N, N, 1, restoreOptions(model.getPath(), true, "auto"), null);
            fail("uncertainty from an N2V model");
        } catch (FluoreconException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("probabilistic CARE"));
        }
    }

    @Test
    public void probabilisticCareGivesTheImageAndItsUncertainty() throws Exception {
        File model = new File(Files.createTempDirectory("fluorecon-care").toFile(), "model");
        float[] low = noisy(6);
        float[] high = new float[N * N];
        for (int y = 0; y < N; y++) {
            for (int x = 0; x < N; x++) {
                high[y * N + x] = (float) (10 + 5 * Math.sin(x / 5.0) * Math.cos(y / 7.0));
            }
        }
        NativeNn.careTrain(low, high, N, N, 1, tiny("cpu").careOptions("tiny", VOXEL, true, model.getPath()), null);
        float[][] out = NativeNn.restore(low, N, N, 1, restoreOptions(model.getPath(), true, "cpu"), null);
        assertEquals("the image and its uncertainty", 2, out.length);
        assertEquals(N * N, out[0].length);
        assertEquals(N * N, out[1].length);
        for (float s : out[1]) {
            assertTrue("a standard deviation is positive and finite: " + s, s > 0 && Float.isFinite(s));
        }
        float[][] plain = NativeNn.restore(low, N, N, 1, restoreOptions(model.getPath(), false, "cpu"), null);
        assertEquals(1, plain.length);
        assertTrue("the same image with or without its uncertainty", java.util.Arrays.equals(out[0], plain[0]));
    }

    @Test
    public void badInputsThrowWithAMessage() {
        try {
            NativeNn.restore(noisy(2), N, N, 1, restoreOptions("/nonexistent/model", false, "auto"), null);
            fail("missing model");
        } catch (FluoreconException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("model.json"));
        }
        try {
            Denoising.Training t = tiny("auto");
            t.patch = 30;
            NativeNn.n2v(noisy(3), N, N, 1, t.n2vOptions("tiny", VOXEL, null, true), null);
            fail("bad patch size");
        } catch (FluoreconException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("multiple of 4"));
        }
        try {
            NativeNn.n2v(noisy(3), N, N, 1, "{not json", null);
            fail("bad options");
        } catch (FluoreconException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("bad Noise2Void options"));
        }
        try {
            NativeNn.n2v(noisy(3), N, N, 1, tiny("tpu").n2vOptions("tiny", VOXEL, null, true), null);
            fail("unknown device");
        } catch (FluoreconException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("unknown device 'tpu'"));
        }
        try {
            NativeNn.careTrain(noisy(4), noisy(5), N, N, 1, tiny("gpu:1").careOptions("x", VOXEL, false, "/tmp/x"),
                    null);
            fail("unknown device");
        } catch (FluoreconException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("unknown device 'gpu:1'"));
        }
        try {
            String misspelt = tiny("auto").n2vOptions("tiny", VOXEL, null, true).replace("\"epochs\"", "\"epoch\"");
            NativeNn.n2v(noisy(3), N, N, 1, misspelt, null);
            fail("misspelt option accepted");
        } catch (FluoreconException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("unknown field `epoch`"));
        }
    }

    /**
     * Classical denoising through JNI: Poisson noise of a known smooth image (seeded) is reduced to less than
     * a third of its RMSE, the estimated model is logged, and a bad camera is refused with a message.
     */
    @Test
    public void classicalDenoisingReducesPoissonNoise() throws FluoreconException {
        int n = 96;
        Random r = new Random(4);
        float[] truth = new float[n * n];
        float[] noisy = new float[n * n];
        for (int i = 0; i < n * n; i++) {
            double lambda = 20 + 15 * Math.sin((i % n) / 6.0) * Math.cos((i / n) / 9.0);
            truth[i] = (float) lambda;
            // Poisson by inversion (Knuth), enough for λ ≤ 35.
            double l = Math.exp(-lambda);
            double p = r.nextDouble();
            int k = 0;
            while (p > l) {
                p *= r.nextDouble();
                k++;
            }
            noisy[i] = k;
        }
        LogRecorder log = new LogRecorder();
        String options = new NativeOptions().put("voxel_nm", VOXEL).put("camera", (String) null).toString();
        float[] out = NativeNn.denoiseClassical(noisy, n, n, 1, options, log);
        assertEquals(n * n, out.length);
        double before = 0;
        double after = 0;
        for (int i = 0; i < n * n; i++) {
            before += (noisy[i] - truth[i]) * (noisy[i] - truth[i]);
            after += (out[i] - truth[i]) * (out[i] - truth[i]);
        }
        assertTrue("RMSE " + Math.sqrt(before / (n * n)) + " -> " + Math.sqrt(after / (n * n)), after < before / 9);
        assertTrue(log.lines.toString(), log.mentions("estimated Poisson–Gaussian noise"));
        String bad = new NativeOptions().put("voxel_nm", VOXEL)
                .put("camera", new NativeOptions().put("gain", 0.0).put("offset", 0.0).put("read_noise", 1.0))
                .toString();
        try {
            NativeNn.denoiseClassical(noisy, n, n, 1, bad, log);
            fail("a zero gain was accepted");
        } catch (FluoreconException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("gain"));
        }
    }
}
