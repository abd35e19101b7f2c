package fluorecon;

import ij.IJ;
import ij.ImagePlus;
import ij.ImageStack;
import ij.Prefs;
import ij.WindowManager;
import ij.gui.GenericDialog;
import ij.measure.Calibration;
import ij.measure.ResultsTable;
import ij.process.FloatProcessor;

import java.util.Locale;

/**
 * Plugins › Fluorecon › Deep-STORM…: localizes molecules in dense frames, where spots overlap, with a
 * Deep-STORM network (Nehme et al. 2018). Shows the super-resolved image (the sum of the frames' density
 * maps, molecules per fine pixel) and the table "Localizations" with ThunderSTORM's columns.
 *
 * <p>Macro keys and defaults: {@code model} (a model folder; empty = the model bundled with Fluorecon,
 * trained for an EMCCD with 100 nm pixels), {@code pixel_size} (nm; from the calibration when in nm or µm,
 * else 100), {@code offset} 100 (ADU), {@code photoelectrons_per_adu} 1, {@code em_gain} 0,
 * {@code threshold} 0 (= the model's own), {@code density_image} (on), {@code save_csv} (a path; empty =
 * none), {@code device} auto|cpu|cuda. The camera settings are shared with Localize Molecules and
 * remembered between runs. Esc cancels.
 */
public class DeepStormPlugIn extends FluoreconCommand {
    /** Shared with {@link LocalizePlugIn}: the same camera settings. */
    private static final String PREFIX = "fluorecon.smlm.";
    private static final String OWN = "fluorecon.deepstorm.";
    /** Frames handed to the engine per call. */
    private static final int CHUNK = 32;

    @Override
    void execute() throws FluoreconException {
        ImagePlus imp = WindowManager.getCurrentImage();
        if (imp == null) {
            throw new FluoreconException("There is no image for Deep-STORM: open a stack of camera frames first.");
        }
        if (imp.getBitDepth() == 24) {
            throw new FluoreconException("\"" + imp.getTitle() + "\" is an RGB image; Deep-STORM needs the raw"
                    + " camera frames (8-, 16- or 32-bit).");
        }
        if (imp.getNChannels() > 1) {
            throw new FluoreconException("\"" + imp.getTitle() + "\" has " + imp.getNChannels()
                    + " channels; localize one channel at a time (Image › Color › Split Channels).");
        }
        boolean macro = calledWithOptions();
        Calibration cal = imp.getCalibration();
        double calibratedNm = Units.toNm(cal.pixelWidth, cal.getUnit());
        GenericDialog gd = new GenericDialog("Deep-STORM");
        gd.addStringField("Model", macro ? "" : Prefs.get(OWN + "model", ""), 30);
        gd.addMessage("(empty: the bundled model, EMCCD, 100 nm pixels, PSF sigma 120 nm)");
        double pixelNm = calibratedNm > 0 ? calibratedNm : get(PREFIX, "pixel_size", 100, macro);
        gd.addNumericField("Pixel_size", pixelNm, 2, 8, "nm (camera pixel in the sample)");
        gd.addMessage("Camera: photons = (value - offset) x e-/ADU / EM gain");
        gd.addNumericField("Offset", get(PREFIX, "offset", 100, macro), 1, 8, "ADU");
        gd.addNumericField("Photoelectrons_per_ADU", get(PREFIX, "photoelectrons_per_adu", 1, macro), 3, 8,
                "e-/ADU");
        gd.addNumericField("EM_gain", get(PREFIX, "em_gain", 0, macro), 1, 8, "(0 = no EM gain, e.g. sCMOS)");
        gd.addNumericField("Threshold", get(OWN, "threshold", 0, macro), 2, 8, "(0 = the model's own)");
        gd.addCheckbox("Density_image", macro || Prefs.get(OWN + "density_image", true));
        gd.addStringField("Save_CSV", macro ? "" : Prefs.get(OWN + "save_csv", ""), 30);
        String device = macro ? DeconvolvePlugIn.DEVICES[0] : Prefs.get(OWN + "device", DeconvolvePlugIn.DEVICES[0]);
        if (DeconvolvePlugIn.indexOf(DeconvolvePlugIn.DEVICES, device) < 0) {
            device = DeconvolvePlugIn.DEVICES[0];
        }
        gd.addChoice("Device", DeconvolvePlugIn.DEVICES, device);
        gd.showDialog();
        if (gd.wasCanceled()) {
            return;
        }
        String model = gd.getNextString().trim();
        pixelNm = gd.getNextNumber();
        double offset = gd.getNextNumber();
        double ePerAdu = gd.getNextNumber();
        double emGain = gd.getNextNumber();
        double threshold = gd.getNextNumber();
        boolean densityImage = gd.getNextBoolean();
        String csv = gd.getNextString().trim();
        device = gd.getNextChoice();
        if (gd.invalidNumber()) {
            throw new FluoreconException("A field of the Deep-STORM dialog is not a number.");
        }
        checkPositiveNm(pixelNm, "The pixel size");
        if (!macro) {
            Prefs.set(OWN + "model", model);
            Prefs.set(PREFIX + "pixel_size", pixelNm);
            Prefs.set(PREFIX + "offset", offset);
            Prefs.set(PREFIX + "photoelectrons_per_adu", ePerAdu);
            Prefs.set(PREFIX + "em_gain", emGain);
            Prefs.set(OWN + "threshold", threshold);
            Prefs.set(OWN + "density_image", densityImage);
            Prefs.set(OWN + "save_csv", csv);
            Prefs.set(OWN + "device", device);
        }

        Native.ensureLoaded();
        long start = System.nanoTime();
        ImageStack stack = imp.getStack();
        int w = imp.getWidth();
        int h = imp.getHeight();
        int n = stack.getSize();
        JavaProgress progress = new JavaProgress();
        long handle = NativeDeepStorm.deepstormNew(model, w, h, pixelNm, offset, ePerAdu, emGain, threshold,
                device, progress);
        float[] locs;
        float[] density = null;
        int up;
        try {
            up = NativeDeepStorm.deepstormUpsampling(handle);
            int chunks = (n + CHUNK - 1) / CHUNK;
            for (int c = 0; c < chunks; c++) {
                if (progress.cancelled()) {
                    throw new CancelledException("cancelled by the user");
                }
                progress.startPart(c, chunks);
                int first = c * CHUNK;
                int count = Math.min(CHUNK, n - first);
                float[] frames = new float[count * w * h];
                for (int k = 0; k < count; k++) {
                    float[] px = (float[]) stack.getProcessor(first + k + 1).convertToFloatProcessor().getPixels();
                    System.arraycopy(px, 0, frames, k * w * h, w * h);
                }
                NativeDeepStorm.deepstormPush(handle, frames, progress);
                progress.fraction(1.0);
            }
            density = densityImage ? new float[w * up * h * up] : null;
            long h0 = handle;
            handle = 0;
            locs = NativeDeepStorm.deepstormFinish(h0, density);
        } finally {
            if (handle != 0) {
                NativeDeepStorm.deepstormFree(handle);
            }
            progress.done();
        }
        if (!csv.isEmpty()) {
            NativeSmlm.writeCsv(csv, locs);
        }
        ResultsTable rt = Localizations.toTable(locs);
        rt.show(Localizations.TABLE);
        if (density != null) {
            ImagePlus out = new ImagePlus(DeconvolvePlugIn.withoutExtension(imp.getTitle()) + "-DeepSTORM",
                    new FloatProcessor(w * up, h * up, density));
            Calibration oc = out.getCalibration();
            oc.pixelWidth = pixelNm / up;
            oc.pixelHeight = pixelNm / up;
            oc.setUnit("nm");
            out.show();
        }
        double secs = (System.nanoTime() - start) * 1e-9;
        IJ.log(String.format(Locale.ROOT, "Fluorecon: Deep-STORM found %d molecules in %d frames of \"%s\" in"
                + " %.1f s (%.1f frames/s)%s", locs.length / NativeSmlm.FIELDS, n, imp.getTitle(), secs, n / secs,
                csv.isEmpty() ? "" : " → " + csv));
    }

    private static double get(String prefix, String key, double fallback, boolean macro) {
        return macro ? fallback : Prefs.get(prefix + key, fallback);
    }
}
