package fluorecon;

import ij.ImagePlus;
import ij.Prefs;
import ij.WindowManager;
import ij.gui.GenericDialog;
import ij.measure.Calibration;

import java.util.Locale;

/**
 * Plugins › Fluorecon › Deconvolution › Generate PSF…: computes a model PSF (Born &amp; Wolf or
 * Gaussian) as a new 32-bit image calibrated in µm, e.g. "PSF BW NA1.40 520nm".
 *
 * <p>Macro keys: {@code model} ({@code [Born & Wolf]} or {@code Gaussian}), {@code na},
 * {@code wavelength} (nm), {@code immersion}, {@code pixel_size} (nm), {@code z_step} (nm),
 * {@code width}, {@code height}, {@code depth} (pixels, odd). Unnamed keys take the defaults:
 * Born &amp; Wolf, NA 1.4, 520 nm, oil 1.518, 65×65×33 pixels of 100 nm × 200 nm; when an image is
 * open, its pixel size and z step (and depth 1 when it is 2D).
 */
public class GeneratePsfPlugIn extends FluoreconCommand {
    static final int DEFAULT_WIDTH = 65;
    static final int DEFAULT_HEIGHT = 65;
    static final int DEFAULT_DEPTH = 33;

    private static final String PREFIX = "fluorecon.psf.";

    @Override
    void execute() throws FluoreconException {
        boolean macro = calledWithOptions();
        Optics optics = macro ? Optics.defaults() : Optics.remembered();
        PsfModel model = macro ? PsfModel.BORN_WOLF : rememberedModel();
        double pixelSizeNm = macro ? Optics.DEFAULT_PIXEL_SIZE_NM
                : Prefs.get(PREFIX + "pixel_size", Optics.DEFAULT_PIXEL_SIZE_NM);
        double zStepNm = macro ? Optics.DEFAULT_Z_STEP_NM : Prefs.get(PREFIX + "z_step", Optics.DEFAULT_Z_STEP_NM);
        double width = macro ? DEFAULT_WIDTH : Prefs.get(PREFIX + "width", DEFAULT_WIDTH);
        double height = macro ? DEFAULT_HEIGHT : Prefs.get(PREFIX + "height", DEFAULT_HEIGHT);
        double depth = macro ? DEFAULT_DEPTH : Prefs.get(PREFIX + "depth", DEFAULT_DEPTH);
        ImagePlus current = WindowManager.getCurrentImage();
        if (current != null) {
            double[] voxel = Units.voxelSizeNm(current.getCalibration());
            if (voxel != null) {
                pixelSizeNm = voxel[0];
                zStepNm = voxel[2];
            }
            if (current.getNSlices() == 1) {
                depth = 1;
            }
        }

        GenericDialog gd = new FluoreconDialog("Generate PSF");
        gd.addChoice("Model", PsfModel.labels(), model.label);
        optics.addFields(gd);
        gd.addNumericField("Pixel_size", pixelSizeNm, 1, 6, "nm");
        gd.addNumericField("Z_step", zStepNm, 1, 6, "nm");
        gd.addNumericField("Width", width, 0, 6, "pixels (odd)");
        gd.addNumericField("Height", height, 0, 6, "pixels (odd)");
        gd.addNumericField("Depth", depth, 0, 6, "planes (odd)");
        gd.showDialog();
        if (gd.wasCanceled()) {
            return;
        }
        String modelLabel = gd.getNextChoice();
        model = PsfModel.fromLabel(modelLabel);
        optics = Optics.read(gd);
        pixelSizeNm = gd.getNextNumber();
        zStepNm = gd.getNextNumber();
        width = gd.getNextNumber();
        height = gd.getNextNumber();
        depth = gd.getNextNumber();
        if (model == null) {
            throw new FluoreconException("Unknown PSF model \"" + modelLabel + "\": use Born & Wolf or Gaussian.");
        }
        if (gd.invalidNumber()) {
            throw new FluoreconException("A field of the Generate PSF dialog is not a number.");
        }
        optics.check();
        checkPositiveNm(pixelSizeNm, "The pixel size");
        checkPositiveNm(zStepNm, "The z step");
        int nx = oddSize(width, "The width");
        int ny = oddSize(height, "The height");
        int nz = oddSize(depth, "The depth");
        if (!macro) {
            optics.remember();
            Prefs.set(PREFIX + "model", model.label);
            Prefs.set(PREFIX + "pixel_size", pixelSizeNm);
            Prefs.set(PREFIX + "z_step", zStepNm);
            Prefs.set(PREFIX + "width", nx);
            Prefs.set(PREFIX + "height", ny);
            Prefs.set(PREFIX + "depth", nz);
        }

        Native.ensureLoaded();
        float[] psf = Native.generatePsf(optics.psfOptions(model, pixelSizeNm, zStepNm), nx, ny, nz);
        ImagePlus imp = Hyperstacks.create(title(model, optics), nx, ny, 1, nz, 1, new float[][] {psf});
        imp.setCalibration(micronCalibration(pixelSizeNm, zStepNm));
        imp.show();
    }

    /** @return e.g. "PSF BW NA1.40 520nm" */
    static String title(PsfModel model, Optics optics) {
        return String.format(Locale.ROOT, "PSF %s NA%.2f %.0fnm",
                model.abbreviation, optics.na, optics.wavelengthNm);
    }

    private static Calibration micronCalibration(double pixelSizeNm, double zStepNm) {
        Calibration cal = new Calibration();
        cal.pixelWidth = pixelSizeNm / 1000;
        cal.pixelHeight = pixelSizeNm / 1000;
        cal.pixelDepth = zStepNm / 1000;
        cal.setUnit("micron");
        return cal;
    }

    private static PsfModel rememberedModel() {
        PsfModel model = PsfModel.fromLabel(Prefs.get(PREFIX + "model", PsfModel.BORN_WOLF.label));
        return model == null ? PsfModel.BORN_WOLF : model;
    }

    /** @return {@code value} as an int when it is a positive odd whole number */
    private static int oddSize(double value, String what) throws FluoreconException {
        int n = atLeastOne(value, what);
        if (n % 2 == 0) {
            throw new FluoreconException(what + " of the PSF must be odd (its centre is the middle pixel); it is "
                    + n + ".");
        }
        return n;
    }
}
