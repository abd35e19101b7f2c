package fluorecon;

import ij.IJ;
import ij.ImagePlus;
import ij.Prefs;
import ij.WindowManager;
import ij.gui.GenericDialog;

import java.util.List;
import java.util.Locale;

/**
 * Plugins › Fluorecon › Deconvolution › Deconvolve (Richardson-Lucy)…: deconvolves every (channel,
 * frame) z-stack of the current image with a measured PSF (an open image) or a model PSF, into a
 * new 32-bit image "&lt;title&gt;-RL&lt;iterations&gt;" with the input's dimensions and
 * calibration.
 *
 * <p>Macro keys and defaults: {@code psf} (an image title, {@code [[Model: Born & Wolf]]} or
 * {@code [[Model: Gaussian]]}; the single-bracket forms are accepted too; default Born &amp; Wolf),
 * {@code na} 1.4, {@code wavelength} 520 (emission, nm), {@code immersion} 1.518, {@code pixel_size}
 * 100 and {@code z_step} 200 (nm, only for an image not calibrated in nm/µm), {@code iterations} 40,
 * {@code regularization} 0 (TV λ), {@code acceleration} (off unless named), {@code boundary}
 * non-circulant|circulant, {@code tolerance} 0 (run all iterations), {@code device} auto|cpu|cuda.
 * Interactive dialogs start from the last values used; macros from these defaults.
 */
public class DeconvolvePlugIn extends FluoreconCommand {
    static final String MODEL_BORN_WOLF = "[Model: Born & Wolf]";
    static final String MODEL_GAUSSIAN = "[Model: Gaussian]";
    static final String[] BOUNDARIES = {"non-circulant", "circulant"};
    static final int DEFAULT_ITERATIONS = 40;

    private static final String PREFIX = "fluorecon.rl.";

    @Override
    void execute() throws FluoreconException {
        ImagePlus imp = WindowManager.getCurrentImage();
        if (imp == null) {
            throw new FluoreconException("There is no image to deconvolve: open one first.");
        }
        Hyperstacks.checkSupported(imp, "The image");
        List<ImagePlus> psfImages = Dialogs.otherImages(imp);
        Settings settings = showDialog(imp, psfImages);
        if (settings == null) {
            return;
        }
        Native.ensureLoaded();
        Psf psf = psfFor(settings, imp);
        if (!imp.lockSilently()) {
            throw new FluoreconException("\"" + imp.getTitle() + "\" is in use by another command; try again"
                    + " when it has finished.");
        }
        ImagePlus result;
        long start = System.nanoTime();
        try {
            result = deconvolve(imp, psf, settings);
        } finally {
            imp.unlock();
        }
        String psfName = settings.psfImage != null ? "\"" + settings.psfChoice + "\""
                : settings.model.label + " model";
        IJ.log(String.format(Locale.ROOT, "Fluorecon: \"%s\" → \"%s\" (%s PSF, %d iterations,"
                + " %d channel(s) × %d frame(s)) in %.1f s", imp.getTitle(), result.getTitle(), psfName,
                settings.iterations, imp.getNChannels(), imp.getNFrames(), (System.nanoTime() - start) * 1e-9));
        result.show();
    }

    /** Runs the engine on every (channel, frame) volume; the input is only read. */
    private static ImagePlus deconvolve(ImagePlus imp, Psf psf, Settings s) throws FluoreconException {
        int nc = imp.getNChannels();
        int nt = imp.getNFrames();
        float[][] volumes = new float[nc * nt][];
        String options = new NativeOptions().put("measured_psf", psf.measured).put("iterations", s.iterations)
                .put("tv_lambda", s.regularization).put("acceleration", s.acceleration).put("circulant", s.circulant)
                .put("tolerance", s.tolerance).put("voxel_nm", s.voxelNm).put("device", s.device).toString();
        JavaProgress progress = new JavaProgress();
        try {
            for (int t = 1; t <= nt; t++) {
                for (int c = 1; c <= nc; c++) {
                    int part = (t - 1) * nc + (c - 1);
                    progress.startPart(part, volumes.length);
                    volumes[part] = Native.deconvolve(Hyperstacks.readVolume(imp, c, t), imp.getWidth(),
                            imp.getHeight(), imp.getNSlices(), psf.pixels, psf.nx, psf.ny, psf.nz, options, progress);
                }
            }
        } finally {
            progress.done();
        }
        return Hyperstacks.createLike(imp, Dialogs.withoutExtension(imp.getTitle()) + "-RL" + s.iterations, volumes);
    }

    /** Reads the PSF image, or computes the model PSF sized for {@code imp}. */
    private static Psf psfFor(Settings s, ImagePlus imp) throws FluoreconException {
        if (s.psfImage != null) {
            ImagePlus p = s.psfImage;
            Hyperstacks.checkSupported(p, "The PSF");
            if (p.getNChannels() > 1 || p.getNFrames() > 1) {
                throw new FluoreconException("The PSF \"" + p.getTitle() + "\" has " + p.getNChannels()
                        + " channel(s) and " + p.getNFrames() + " frame(s); it must have one of each."
                        + " Pick one with Image › Duplicate….");
            }
            warnIfVoxelsDiffer(p, s.voxelNm);
            return new Psf(Hyperstacks.readVolume(p, 1, 1), p.getWidth(), p.getHeight(), p.getNSlices(), true);
        }
        String options = s.optics.psfOptions(s.model, s.voxelNm[0], s.voxelNm[2]);
        int[] size = Native.suggestPsfSize(options, imp.getWidth(), imp.getHeight(), imp.getNSlices());
        float[] pixels = Native.generatePsf(options, size[0], size[1], size[2]);
        return new Psf(pixels, size[0], size[1], size[2], false);
    }

    /**
     * Logs a warning when a calibrated PSF image was recorded with another voxel size than the image
     * (by more than 2 %): the engine uses the PSF's pixels as they are, without resampling.
     */
    private static void warnIfVoxelsDiffer(ImagePlus psf, double[] imageVoxelNm) {
        double[] psfVoxelNm = Units.voxelSizeNm(psf.getCalibration());
        if (psfVoxelNm == null) {
            return;
        }
        for (int i = 0; i < 3; i++) {
            if (Math.abs(psfVoxelNm[i] / imageVoxelNm[i] - 1) > 0.02 && (i < 2 || psf.getNSlices() > 1)) {
                IJ.log(String.format(Locale.ROOT, "Warning: the PSF \"%s\" has voxels of %.0f×%.0f×%.0f nm,"
                        + " the image %.0f×%.0f×%.0f nm; the PSF is used without resampling.", psf.getTitle(),
                        psfVoxelNm[0], psfVoxelNm[1], psfVoxelNm[2],
                        imageVoxelNm[0], imageVoxelNm[1], imageVoxelNm[2]));
                return;
            }
        }
    }

    /** @return the checked settings, or null when the dialog was cancelled */
    private static Settings showDialog(ImagePlus imp, List<ImagePlus> psfImages) throws FluoreconException {
        boolean macro = calledWithOptions();
        Settings s = macro ? new Settings() : Settings.remembered();
        String[] psfChoices = new String[psfImages.size() + 2];
        for (int i = 0; i < psfImages.size(); i++) {
            psfChoices[i] = psfImages.get(i).getTitle();
        }
        psfChoices[psfImages.size()] = MODEL_BORN_WOLF;
        psfChoices[psfImages.size() + 1] = MODEL_GAUSSIAN;
        double[] calibrated = Units.voxelSizeNm(imp.getCalibration());

        GenericDialog gd = new FluoreconDialog("Deconvolve (Richardson-Lucy)");
        gd.addChoice("PSF", psfChoices,
                Dialogs.indexOf(psfChoices, s.psfChoice) >= 0 ? s.psfChoice : MODEL_BORN_WOLF);
        s.optics.addFields(gd);
        if (calibrated == null) {
            gd.addMessage("The image is not calibrated in nm or µm:");
            gd.addNumericField("Pixel_size", s.voxelNm[0], 1, 6, "nm");
            gd.addNumericField("Z_step", s.voxelNm[2], 1, 6, "nm");
        }
        gd.addNumericField("Iterations", s.iterations, 0);
        gd.addNumericField("Regularization", s.regularization, decimals(s.regularization, 4), 8,
                "TV λ (0 = none)");
        gd.addCheckbox("Acceleration", s.acceleration);
        gd.addChoice("Boundary", BOUNDARIES, BOUNDARIES[s.circulant ? 1 : 0]);
        gd.addNumericField("Tolerance", s.tolerance, decimals(s.tolerance, 4), 8, "(0 = run all iterations)");
        gd.addChoice(Devices.LABEL, Devices.CHOICES, s.device);
        gd.showDialog();
        if (gd.wasCanceled()) {
            return null;
        }

        String psfChoice = gd.getNextChoice();
        s.optics = Optics.read(gd);
        s.voxelFromDialog = calibrated == null;
        if (s.voxelFromDialog) {
            double pixelSizeNm = gd.getNextNumber();
            s.voxelNm = new double[] {pixelSizeNm, pixelSizeNm, gd.getNextNumber()};
        } else {
            s.voxelNm = calibrated;
        }
        double iterations = gd.getNextNumber();
        s.regularization = gd.getNextNumber();
        s.acceleration = gd.getNextBoolean();
        String boundary = gd.getNextChoice();
        s.tolerance = gd.getNextNumber();
        s.device = Devices.check(gd.getNextChoice());
        if (gd.invalidNumber()) {
            throw new FluoreconException("A field of the Deconvolve dialog is not a number.");
        }

        int psfIndex = Dialogs.indexOf(psfChoices, psfChoice);
        if (psfIndex < 0) { // a macro's "psf=[Model: Gaussian]" arrives without the inner brackets
            psfIndex = Dialogs.indexOf(psfChoices, "[" + psfChoice + "]");
        }
        if (psfIndex < 0) {
            throw new FluoreconException("PSF \"" + psfChoice + "\" is neither an open image (other than the one"
                    + " to deconvolve) nor " + MODEL_BORN_WOLF + " or " + MODEL_GAUSSIAN + ".");
        }
        s.psfChoice = psfChoices[psfIndex];
        s.psfImage = psfIndex < psfImages.size() ? psfImages.get(psfIndex) : null;
        s.model = s.psfChoice.equals(MODEL_GAUSSIAN) ? PsfModel.GAUSSIAN : PsfModel.BORN_WOLF;
        s.iterations = atLeastOne(iterations, "The number of iterations");
        s.circulant = choiceIndex(BOUNDARIES, boundary, "boundary") == 1;
        s.check();
        if (!macro) {
            s.remember();
        }
        return s;
    }

    /** @return the index of a choice a macro gave, checked because GenericDialog passes unknown ones on */
    private static int choiceIndex(String[] items, String value, String key) throws FluoreconException {
        int index = Dialogs.indexOf(items, value);
        if (index < 0) {
            StringBuilder valid = new StringBuilder();
            for (String item : items) {
                valid.append(valid.length() == 0 ? "" : ", ").append(item);
            }
            throw new FluoreconException("Unknown " + key + " \"" + value + "\": use one of " + valid + ".");
        }
        return index;
    }

    /** The dialog's values; lengths in nm. */
    private static final class Settings {
        String psfChoice = MODEL_BORN_WOLF;
        /** The measured PSF chosen, or null for a model. */
        ImagePlus psfImage;
        PsfModel model = PsfModel.BORN_WOLF;
        Optics optics = Optics.defaults();
        /** True when the image is not calibrated in lengths and the dialog asked for the voxel size. */
        boolean voxelFromDialog;
        /** {x, y, z} voxel size in nm. */
        double[] voxelNm = {Optics.DEFAULT_PIXEL_SIZE_NM, Optics.DEFAULT_PIXEL_SIZE_NM, Optics.DEFAULT_Z_STEP_NM};
        int iterations = DEFAULT_ITERATIONS;
        double regularization;
        boolean acceleration;
        boolean circulant;
        double tolerance;
        String device = Devices.CHOICES[0];

        static Settings remembered() {
            Settings s = new Settings();
            s.psfChoice = Prefs.get(PREFIX + "psf", s.psfChoice);
            s.optics = Optics.remembered();
            double pixelSizeNm = Prefs.get(PREFIX + "pixel_size", s.voxelNm[0]);
            s.voxelNm = new double[] {pixelSizeNm, pixelSizeNm, Prefs.get(PREFIX + "z_step", s.voxelNm[2])};
            s.iterations = (int) Prefs.get(PREFIX + "iterations", s.iterations);
            s.regularization = Prefs.get(PREFIX + "regularization", s.regularization);
            s.acceleration = Prefs.get(PREFIX + "acceleration", s.acceleration);
            s.circulant = Prefs.get(PREFIX + "circulant", s.circulant);
            s.tolerance = Prefs.get(PREFIX + "tolerance", s.tolerance);
            s.device = Devices.remembered(PREFIX + "device");
            return s;
        }

        void remember() {
            Prefs.set(PREFIX + "psf", psfChoice);
            optics.remember();
            if (voxelFromDialog) {
                Prefs.set(PREFIX + "pixel_size", voxelNm[0]);
                Prefs.set(PREFIX + "z_step", voxelNm[2]);
            }
            Prefs.set(PREFIX + "iterations", iterations);
            Prefs.set(PREFIX + "regularization", regularization);
            Prefs.set(PREFIX + "acceleration", acceleration);
            Prefs.set(PREFIX + "circulant", circulant);
            Prefs.set(PREFIX + "tolerance", tolerance);
            Prefs.set(PREFIX + "device", device);
        }

        void check() throws FluoreconException {
            if (psfImage == null) {
                optics.check();
            }
            checkPositiveNm(voxelNm[0], "The pixel size");
            checkPositiveNm(voxelNm[2], "The z step");
            if (!(regularization >= 0)) {
                throw new FluoreconException("The regularization (TV λ) must be 0 or more; it is "
                        + regularization + ".");
            }
            if (!(tolerance >= 0)) {
                throw new FluoreconException("The tolerance must be 0 or more; it is " + tolerance + ".");
            }
        }
    }

    /** A PSF volume, x fastest. */
    private static final class Psf {
        final float[] pixels;
        final int nx;
        final int ny;
        final int nz;
        /** True for a measured PSF, which the engine cleans (background, centring, normalisation). */
        final boolean measured;

        Psf(float[] pixels, int nx, int ny, int nz, boolean measured) {
            this.pixels = pixels;
            this.nx = nx;
            this.ny = ny;
            this.nz = nz;
            this.measured = measured;
        }
    }
}
