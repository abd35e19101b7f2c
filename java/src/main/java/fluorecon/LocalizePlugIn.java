package fluorecon;

import ij.IJ;
import ij.ImagePlus;
import ij.Prefs;
import ij.gui.GenericDialog;
import ij.measure.ResultsTable;

import java.util.Locale;

/**
 * Plugins › Fluorecon › Localization › Localize Molecules…: finds and fits single molecules in
 * every frame of the current stack of raw camera frames (SMLM: PALM, STORM, PAINT) and shows them
 * in the table "Localizations" with ThunderSTORM's columns (optionally also saved as CSV).
 *
 * <p>Camera: photons = (pixel value − offset) · photoelectrons per ADU / EM gain (EM gain 0 = none,
 * as sCMOS). Macro keys and defaults: {@code pixel_size} (nm; from the calibration when in nm or µm,
 * else 100), {@code offset} 100 (ADU), {@code photoelectrons_per_adu} 1, {@code em_gain} 0,
 * {@code threshold} 1.5 (× std(Wave.F1)), {@code fitter} MLE|Least-squares, {@code psf_sigma} 130 (nm),
 * {@code fit_radius} 3 (pixels), {@code sigma_tolerance} 0.12 (0 = keep all), {@code drift_correction}
 * 0 (frames per block; 0 = none), {@code save_csv} (a path; empty = none), {@code device}
 * auto|cpu|cuda (fitting runs on the CPU in this version; a CUDA request is logged with the reason). Interactive dialogs start
 * from the last values used; macros from these defaults. Esc cancels.
 */
public class LocalizePlugIn extends FluoreconCommand {
    static final String[] FITTERS = {"MLE", "Least-squares"};
    private static final String PREFIX = "fluorecon.smlm.";
    /** Frames handed to the engine per call. */
    private static final int CHUNK = 256;

    @Override
    void execute() throws FluoreconException {
        ImagePlus imp = Localizations.currentFrames("localize");
        boolean macro = calledWithOptions();
        GenericDialog gd = new FluoreconDialog("Localize Molecules");
        Localizations.addCameraFields(gd, imp, macro);
        gd.addNumericField("Threshold", remembered("threshold", 1.5, macro), 2, 8, "x std(Wave.F1)");
        gd.addChoice("Fitter", FITTERS, macro ? FITTERS[0] : Prefs.get(PREFIX + "fitter", FITTERS[0]));
        gd.addNumericField("PSF_sigma", remembered("psf_sigma", 130, macro), 1, 8, "nm (starting value)");
        gd.addNumericField("Fit_radius", remembered("fit_radius", 3, macro), 0, 8, "pixels");
        gd.addNumericField("Sigma_tolerance", remembered("sigma_tolerance", 0.12, macro), 2, 8,
                "(0 = keep all fits)");
        gd.addNumericField("Drift_correction", remembered("drift_correction", 0, macro), 0, 8,
                "frames per block (0 = none)");
        gd.addStringField("Save_CSV", macro ? "" : Prefs.get(PREFIX + "save_csv", ""), 30);
        Devices.addChoice(gd, PREFIX + "device", macro);
        gd.showDialog();
        if (gd.wasCanceled()) {
            return;
        }
        Localizations.Camera cam = Localizations.readCameraFields(gd, macro);
        double threshold = gd.getNextNumber();
        String fitter = gd.getNextChoice();
        double sigmaNm = gd.getNextNumber();
        double fitRadius = gd.getNextNumber();
        double sigmaTolerance = gd.getNextNumber();
        double driftBlock = gd.getNextNumber();
        String csv = gd.getNextString().trim();
        String device = Devices.read(gd, PREFIX + "device", macro);
        if (gd.invalidNumber()) {
            throw new FluoreconException("A field of the Localize Molecules dialog is not a number.");
        }
        Localizations.checkCsvPath(csv);
        checkPositiveNm(sigmaNm, "The PSF sigma");
        boolean mle = !fitter.equalsIgnoreCase(FITTERS[1]);
        if (!macro) {
            Prefs.set(PREFIX + "threshold", threshold);
            Prefs.set(PREFIX + "fitter", fitter);
            Prefs.set(PREFIX + "psf_sigma", sigmaNm);
            Prefs.set(PREFIX + "fit_radius", fitRadius);
            Prefs.set(PREFIX + "sigma_tolerance", sigmaTolerance);
            Prefs.set(PREFIX + "drift_correction", driftBlock);
            Prefs.set(PREFIX + "save_csv", csv);
        }

        Native.ensureLoaded();
        long start = System.nanoTime();
        int n = imp.getStackSize();
        JavaProgress progress = new JavaProgress();
        long handle = NativeSmlm.localizerNew(imp.getWidth(), imp.getHeight(), new NativeOptions()
                .put("pixel_nm", cam.pixelNm).put("camera", cam.options()).put("threshold", threshold).put("mle", mle)
                .put("sigma_nm", sigmaNm).put("fit_radius", (int) fitRadius).put("sigma_tolerance", sigmaTolerance)
                .put("device", device).toString());
        float[] locs;
        try {
            final long hh = handle;
            Localizations.pushFrames(imp, CHUNK, progress, frames -> NativeSmlm.localizerPush(hh, frames, progress));
            long h0 = handle;
            handle = 0;
            locs = NativeSmlm.localizerFinish(h0, progress);
        } finally {
            if (handle != 0) {
                NativeSmlm.localizerFree(handle);
            }
            progress.done();
        }
        if (driftBlock > 0) {
            locs = NativeSmlm.correctDrift(locs, Localizations.driftOptions(driftBlock), progress);
        }
        if (!csv.isEmpty()) {
            NativeSmlm.writeCsv(csv, locs);
        }
        ResultsTable rt = Localizations.toTable(locs);
        rt.show(Localizations.TABLE);
        double secs = (System.nanoTime() - start) * 1e-9;
        IJ.log(String.format(Locale.ROOT, "Fluorecon: %d localizations in %d frames of \"%s\" in %.1f s"
                + " (%.0f frames/s)%s", locs.length / NativeSmlm.FIELDS, n, imp.getTitle(), secs, n / secs,
                csv.isEmpty() ? "" : " → " + csv));
    }

    private static double remembered(String key, double fallback, boolean macro) {
        return macro ? fallback : Prefs.get(PREFIX + key, fallback);
    }
}
