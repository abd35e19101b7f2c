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
 * Plugins › Fluorecon › Localization › Render Localizations…: a super-resolved image from the table
 * "Localizations" (or a ThunderSTORM CSV file): each localization drawn as a Gaussian with its
 * uncertainty as σ, or counted in a histogram, at a chosen magnification. Every localization inside
 * the field adds 1 to the image's sum. The new image is calibrated in nm.
 *
 * <p>Macro keys and defaults: {@code csv} (a file; empty = the "Localizations" table),
 * {@code pixel_size} 100 (camera pixel, nm), {@code magnification} 8, {@code mode}
 * Gaussian|Histogram, {@code width} and {@code height} 0 (camera pixels; 0 = just large enough),
 * {@code drift_correction} 0 (frames per block; 0 = none).
 */
public class RenderLocalizationsPlugIn extends FluoreconCommand {
    static final String[] MODES = {"Gaussian", "Histogram"};
    private static final String PREFIX = "fluorecon.render.";

    @Override
    void execute() throws FluoreconException {
        boolean macro = calledWithOptions();
        GenericDialog gd = new FluoreconDialog("Render Localizations");
        gd.addStringField("Csv", macro ? "" : Prefs.get(PREFIX + "csv", ""), 30);
        gd.addMessage("(empty: the \"" + Localizations.TABLE + "\" table)");
        gd.addNumericField("Pixel_size", get("pixel_size", 100, macro), 2, 8, "nm (camera pixel)");
        gd.addNumericField("Magnification", get("magnification", 8, macro), 1, 8, "");
        gd.addChoice("Mode", MODES, macro ? MODES[0] : Prefs.get(PREFIX + "mode", MODES[0]));
        gd.addNumericField("Width", get("width", 0, macro), 0, 8, "camera pixels (0 = fit the data)");
        gd.addNumericField("Height", get("height", 0, macro), 0, 8, "camera pixels (0 = fit the data)");
        gd.addNumericField("Drift_correction", get("drift_correction", 0, macro), 0, 8,
                "frames per block (0 = none)");
        gd.showDialog();
        if (gd.wasCanceled()) {
            return;
        }
        String csv = gd.getNextString().trim();
        double pixelNm = gd.getNextNumber();
        double magnification = gd.getNextNumber();
        String mode = gd.getNextChoice();
        double width = gd.getNextNumber();
        double height = gd.getNextNumber();
        double driftBlock = gd.getNextNumber();
        if (gd.invalidNumber()) {
            throw new FluoreconException("A field of the Render Localizations dialog is not a number.");
        }
        checkPositiveNm(pixelNm, "The pixel size");
        if (!(magnification > 0)) {
            throw new FluoreconException("The magnification must be positive; it is " + magnification + ".");
        }
        if (!macro) {
            Prefs.set(PREFIX + "csv", csv);
            Prefs.set(PREFIX + "pixel_size", pixelNm);
            Prefs.set(PREFIX + "magnification", magnification);
            Prefs.set(PREFIX + "mode", mode);
            Prefs.set(PREFIX + "width", width);
            Prefs.set(PREFIX + "height", height);
            Prefs.set(PREFIX + "drift_correction", driftBlock);
        }
        Native.ensureLoaded();
        float[] locs;
        String source;
        if (csv.isEmpty()) {
            ResultsTable rt = ResultsTable.getResultsTable(Localizations.TABLE);
            if (rt == null) {
                throw new FluoreconException("There is no \"" + Localizations.TABLE + "\" table: run Localize"
                        + " Molecules… first, or give a CSV file.");
            }
            locs = Localizations.fromTable(rt, Localizations.TABLE);
            source = Localizations.TABLE;
        } else {
            locs = NativeSmlm.readCsv(csv);
            source = csv;
        }
        int n = locs.length / NativeSmlm.FIELDS;
        if (n == 0) {
            throw new FluoreconException("\"" + source + "\" has no localizations to render.");
        }
        JavaProgress progress = new JavaProgress();
        if (driftBlock > 0) {
            locs = NativeSmlm.correctDrift(locs, Localizations.driftOptions(driftBlock), progress);
        }
        int wPx = (int) width;
        int hPx = (int) height;
        if (wPx <= 0 || hPx <= 0) {
            float mx = 0;
            float my = 0;
            for (int i = 0; i < n; i++) {
                mx = Math.max(mx, locs[i * NativeSmlm.FIELDS + 1]);
                my = Math.max(my, locs[i * NativeSmlm.FIELDS + 2]);
            }
            wPx = wPx > 0 ? wPx : (int) Math.floor(mx / pixelNm) + 1;
            hPx = hPx > 0 ? hPx : (int) Math.floor(my / pixelNm) + 1;
        }
        float[] pixels = NativeSmlm.render(locs, new NativeOptions().put("width_px", wPx).put("height_px", hPx)
                .put("camera_pixel_nm", pixelNm).put("magnification", magnification)
                .put("histogram", mode.equals(MODES[1])).toString());
        progress.done();
        int outW = (int) Math.round(wPx * magnification);
        int outH = (int) Math.round(hPx * magnification);
        String title = String.format(Locale.ROOT, "Localizations %s x%s", mode,
                magnification == Math.rint(magnification) ? Integer.toString((int) magnification)
                        : Double.toString(magnification));
        ImagePlus out = new ImagePlus(title, new FloatProcessor(outW, outH, pixels));
        Calibration cal = out.getCalibration();
        cal.pixelWidth = pixelNm / magnification;
        cal.pixelHeight = pixelNm / magnification;
        cal.setUnit("nm");
        IJ.log(String.format(Locale.ROOT, "Fluorecon: rendered %d localizations from \"%s\" into %d×%d pixels"
                + " of %.2f nm", n, source, outW, outH, pixelNm / magnification));
        out.show();
    }

    private static double get(String key, double fallback, boolean macro) {
        return macro ? fallback : Prefs.get(PREFIX + key, fallback);
    }
}
