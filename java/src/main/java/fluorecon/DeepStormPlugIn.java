package fluorecon;

import ij.IJ;
import ij.ImagePlus;
import ij.Prefs;
import ij.gui.GenericDialog;
import ij.measure.Calibration;
import ij.measure.ResultsTable;
import ij.process.FloatProcessor;

import java.util.Locale;

/**
 * Plugins › Fluorecon › Localization › Deep-STORM…: localizes molecules in dense frames, where
 * spots overlap, with a Deep-STORM network (Nehme et al. 2018). Shows the super-resolved image (the
 * sum of the frames' density maps, molecules per fine pixel) and the table "Localizations" with
 * ThunderSTORM's columns.
 *
 * <p>Macro keys and defaults: {@code model} (a model folder; empty = the model bundled with Fluorecon,
 * trained for an EMCCD with 100 nm pixels), {@code pixel_size} (nm; from the calibration when in nm or µm,
 * else 100), {@code offset} 100 (ADU), {@code photoelectrons_per_adu} 1, {@code em_gain} 0,
 * {@code threshold} 0 (= the model's own), {@code density_image} (on), {@code save_csv} (a path; empty =
 * none), {@code device} auto|cpu|cuda. The camera settings are shared with Localize Molecules and
 * remembered between runs. Esc cancels.
 */
public class DeepStormPlugIn extends FluoreconCommand {
    private static final String OWN = "fluorecon.deepstorm.";
    /** Frames handed to the engine per call. */
    private static final int CHUNK = 32;

    @Override
    void execute() throws FluoreconException {
        ImagePlus imp = Localizations.currentFrames("Deep-STORM");
        boolean macro = calledWithOptions();
        GenericDialog gd = new FluoreconDialog("Deep-STORM");
        gd.addStringField("Model", macro ? "" : Prefs.get(OWN + "model", ""), 30);
        gd.addMessage("(empty: the bundled model, EMCCD, 100 nm pixels, PSF sigma 120 nm)");
        Localizations.addCameraFields(gd, imp, macro);
        gd.addNumericField("Threshold", get("threshold", 0, macro), 2, 8, "(0 = the model's own)");
        gd.addCheckbox("Density_image", macro || Prefs.get(OWN + "density_image", true));
        gd.addStringField("Save_CSV", macro ? "" : Prefs.get(OWN + "save_csv", ""), 30);
        Devices.addChoice(gd, OWN + "device", macro);
        gd.showDialog();
        if (gd.wasCanceled()) {
            return;
        }
        String model = gd.getNextString().trim();
        Localizations.Camera cam = Localizations.readCameraFields(gd, macro);
        double threshold = gd.getNextNumber();
        boolean densityImage = gd.getNextBoolean();
        String csv = gd.getNextString().trim();
        String device = Devices.read(gd, OWN + "device", macro);
        if (gd.invalidNumber()) {
            throw new FluoreconException("A field of the Deep-STORM dialog is not a number.");
        }
        Localizations.checkCsvPath(csv);
        if (!macro) {
            Prefs.set(OWN + "model", model);
            Prefs.set(OWN + "threshold", threshold);
            Prefs.set(OWN + "density_image", densityImage);
            Prefs.set(OWN + "save_csv", csv);
        }

        Native.ensureLoaded();
        long start = System.nanoTime();
        int w = imp.getWidth();
        int h = imp.getHeight();
        int n = imp.getStackSize();
        JavaProgress progress = new JavaProgress();
        long handle = NativeDeepStorm.deepstormNew(w, h, new NativeOptions()
                .put("model_dir", model.isEmpty() ? null : model).put("pixel_nm", cam.pixelNm)
                .put("camera", cam.options()).put("threshold", threshold).put("device", device).toString(), progress);
        float[] locs;
        float[] density;
        int up;
        try {
            up = NativeDeepStorm.deepstormUpsampling(handle);
            final long hh = handle;
            Localizations.pushFrames(imp, CHUNK, progress, frames -> NativeDeepStorm.deepstormPush(hh, frames,
                    progress));
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
            ImagePlus out = new ImagePlus(Dialogs.withoutExtension(imp.getTitle()) + "-DeepSTORM",
                    new FloatProcessor(w * up, h * up, density));
            Calibration oc = out.getCalibration();
            oc.pixelWidth = cam.pixelNm / up;
            oc.pixelHeight = cam.pixelNm / up;
            oc.setUnit("nm");
            out.show();
        }
        double secs = (System.nanoTime() - start) * 1e-9;
        IJ.log(String.format(Locale.ROOT, "Fluorecon: Deep-STORM found %d molecules in %d frames of \"%s\" in"
                + " %.1f s (%.1f frames/s)%s", locs.length / NativeSmlm.FIELDS, n, imp.getTitle(), secs, n / secs,
                csv.isEmpty() ? "" : " → " + csv));
    }

    private static double get(String key, double fallback, boolean macro) {
        return macro ? fallback : Prefs.get(OWN + key, fallback);
    }
}
