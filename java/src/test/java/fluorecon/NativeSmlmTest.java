package fluorecon;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;
import static org.junit.Assume.assumeTrue;

import ij.measure.ResultsTable;

import java.io.File;

import org.junit.BeforeClass;
import org.junit.Test;

/** Localization through JNI; skipped while ../target/release/libfluorecon.so is missing. */
public class NativeSmlmTest {
    @BeforeClass
    public static void loadLibrary() throws FluoreconException {
        String path = System.getProperty(NativeLoader.PROPERTY);
        assumeTrue("no native library at " + path, path != null && new File(path).isFile());
        Native.ensureLoaded();
    }

    private static String localizerOptions(double offset, String device) {
        Localizations.Camera cam = new Localizations.Camera();
        cam.offset = offset;
        cam.ePerAdu = 1;
        return new NativeOptions().put("pixel_nm", 100).put("camera", cam.options()).put("threshold", 1)
                .put("mle", true).put("sigma_nm", 130).put("fit_radius", 3).put("sigma_tolerance", 0)
                .put("device", device).toString();
    }

    /** Frames of one spot each (no noise) at known positions, localized in two pushes. */
    @Test
    public void localizesSpotsAtKnownPositions() throws FluoreconException {
        int w = 32;
        int n = 5;
        float[] frames = new float[n * w * w];
        double s2 = 2 * 1.3 * 1.3;
        for (int k = 0; k < n; k++) {
            double cx = 10.3 + 2.1 * k;
            double cy = 15.7 - 1.3 * k;
            for (int y = 0; y < w; y++) {
                for (int x = 0; x < w; x++) {
                    double dx = x + 0.5 - cx;
                    double dy = y + 0.5 - cy;
                    frames[(k * w + y) * w + x] = (float) (100 + 20 + 2000 / (Math.PI * s2)
                            * Math.exp(-(dx * dx + dy * dy) / s2));
                }
            }
        }
        long h = NativeSmlm.localizerNew(w, w, localizerOptions(100, "cuda"));
        float[] first = new float[2 * w * w];
        float[] rest = new float[3 * w * w];
        System.arraycopy(frames, 0, first, 0, first.length);
        System.arraycopy(frames, first.length, rest, 0, rest.length);
        LogRecorder log = new LogRecorder();
        NativeSmlm.localizerPush(h, first, log);
        // Fitting runs on the CPU: a CUDA request says why, once, and the device is named.
        assertTrue(log.lines.toString(), log.has("Warning: CUDA:0 was requested but"));
        assertTrue(log.lines.toString(), log.has("Localizing on CPU ("));
        NativeSmlm.localizerPush(h, rest, null);
        float[] locs = NativeSmlm.localizerFinish(h, null);
        assertEquals(n * NativeSmlm.FIELDS, locs.length);
        for (int k = 0; k < n; k++) {
            int o = k * NativeSmlm.FIELDS;
            assertEquals(k + 1, locs[o], 0);
            assertEquals(100 * (10.3 + 2.1 * k), locs[o + 1], 5);
            assertEquals(100 * (15.7 - 1.3 * k), locs[o + 2], 5);
        }
        // Through a ResultsTable and back.
        ResultsTable rt = Localizations.toTable(locs);
        assertTrue(rt.columnExists("x [nm]"));
        float[] again = Localizations.fromTable(rt, "test");
        assertEquals(locs.length, again.length);
        float[] img = NativeSmlm.render(locs, new NativeOptions().put("width_px", w).put("height_px", w)
                .put("camera_pixel_nm", 100).put("magnification", 4).put("histogram", false).toString());
        double sum = 0;
        for (float v : img) {
            sum += v;
        }
        assertEquals(n, sum, 1e-3);
    }

    @Test
    public void refusesAnOffsetAboveTheSignal() throws FluoreconException {
        long h = NativeSmlm.localizerNew(16, 16, localizerOptions(1000, "auto"));
        try {
            NativeSmlm.localizerPush(h, new float[16 * 16], null);
            fail("no error");
        } catch (FluoreconException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("above the signal"));
        } finally {
            NativeSmlm.localizerFree(h);
        }
    }
}
