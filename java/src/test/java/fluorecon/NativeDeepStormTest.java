package fluorecon;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;
import static org.junit.Assume.assumeTrue;

import java.io.File;

import org.junit.BeforeClass;
import org.junit.Test;

/** Deep-STORM through JNI with the bundled model; skipped while ../target/release/libfluorecon.so is missing. */
public class NativeDeepStormTest {
    @BeforeClass
    public static void loadLibrary() throws FluoreconException {
        String path = System.getProperty(NativeLoader.PROPERTY);
        assumeTrue("no native library at " + path, path != null && new File(path).isFile());
        Native.ensureLoaded();
    }

    private static String options(String model, double ePerAdu, double emGain, String device) {
        Localizations.Camera cam = new Localizations.Camera();
        cam.offset = 100;
        cam.ePerAdu = ePerAdu;
        cam.emGain = emGain;
        return new NativeOptions().put("model_dir", model).put("pixel_nm", 100).put("camera", cam.options())
                .put("threshold", 0).put("device", device).toString();
    }

    /**
     * Two overlapping molecules (300 nm apart, PSF σ 120 nm) and one apart in an EMCCD-like frame (seeded
     * Gaussian shot noise): all three found within 40 nm, with photons near the truth; the density map holds about 3 molecules around them.
     */
    @Test
    public void findsOverlappingMolecules() throws FluoreconException {
        int w = 32;
        double[][] truth = {{10.2, 12.4}, {13.2, 12.6}, {22.5, 20.5}};
        double photons = 2000 * 0.9;
        double s2 = 2 * 1.2 * 1.2;
        double adu = 45.0 / 300; // photons per ADU above the offset
        float[] frame = new float[w * w];
        java.util.Random rng = new java.util.Random(3);
        for (int y = 0; y < w; y++) {
            for (int x = 0; x < w; x++) {
                double mu = 18;
                for (double[] t : truth) {
                    double dx = x + 0.5 - t[0];
                    double dy = y + 0.5 - t[1];
                    mu += photons / (Math.PI * s2) * Math.exp(-(dx * dx + dy * dy) / s2);
                }
                // EMCCD shot noise: variance 2·mu photons (excess noise factor 2).
                frame[y * w + x] = (float) (100 + (mu + Math.sqrt(2 * mu) * rng.nextGaussian()) / adu);
            }
        }
        LogRecorder log = new LogRecorder();
        long h = NativeDeepStorm.deepstormNew(w, w, options(null, 45, 300, "cuda"), log);
        assertTrue(log.lines.toString(), log.lines.toString().contains("model 'deepstorm-2d-emccd-100nm' on CPU"));
        assertTrue(log.lines.toString(), log.lines.toString().contains("CUDA:0 was requested but"));
        int up = NativeDeepStorm.deepstormUpsampling(h);
        assertEquals(4, up);
        NativeDeepStorm.deepstormPush(h, frame, null);
        float[] density = new float[w * up * w * up];
        float[] locs = NativeDeepStorm.deepstormFinish(h, density);
        assertEquals(3 * NativeSmlm.FIELDS, locs.length);
        for (double[] t : truth) {
            double best = Double.MAX_VALUE;
            double n = 0;
            for (int i = 0; i < 3; i++) {
                double d = Math.hypot(locs[i * NativeSmlm.FIELDS + 1] - 100 * t[0],
                        locs[i * NativeSmlm.FIELDS + 2] - 100 * t[1]);
                if (d < best) {
                    best = d;
                    n = locs[i * NativeSmlm.FIELDS + 4];
                }
            }
            assertTrue("molecule at " + t[0] + ", " + t[1] + " found " + best + " nm away", best < 40);
            assertEquals(photons, n, 0.15 * photons);
        }
        // The map's mass within 200 nm (8 fine pixels) of the molecules: about one per molecule (±20 %).
        double sum = 0;
        for (int y = 0; y < w * up; y++) {
            for (int x = 0; x < w * up; x++) {
                for (double[] t : truth) {
                    if (Math.hypot(x + 0.5 - up * t[0], y + 0.5 - up * t[1]) < 8) {
                        sum += density[y * w * up + x];
                        break;
                    }
                }
            }
        }
        assertEquals(3, sum, 0.6);
    }

    @Test
    public void badModelFolderIsAClearError() {
        try {
            NativeDeepStorm.deepstormNew(16, 16, options("/nonexistent/model", 1, 0, "auto"), null);
            fail("no error");
        } catch (FluoreconException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("model.json"));
        }
    }
}
