package fluorecon;

import ij.IJ;
import ij.ImagePlus;
import ij.Prefs;
import ij.WindowManager;
import ij.gui.GenericDialog;

import java.io.File;
import java.util.Locale;

/**
 * What the denoising commands share: the training fields of their dialogs (remembered in
 * ImageJ's preferences unless a macro gives the options) and the options the engine reads. Every
 * denoising dialog ends with the {@code device} choice (macro key {@code device}: auto|cpu|cuda; the
 * networks run on the CPU in this version and a CUDA request is logged with the reason).
 */
final class Denoising {
    private static final String PREFIX = "fluorecon.nn.";
    /** Preference of the networks' device choice (training and restoring share it). */
    static final String DEVICE_KEY = PREFIX + "device";

    private Denoising() {
    }

    /** Training fields of a dialog. */
    static final class Training {
        int epochs = 20;
        int steps = 50;
        int batch = 16;
        int patch = 64;
        int filters = 16;
        int kernel;
        double maskedPercent = 0.2;
        boolean n2v2;
        int seed = 1;
        double learningRate = 4e-4;
        /** auto, cpu or cuda: where to train. */
        String device = Devices.CHOICES[0];

        Training(int kernel) {
            this.kernel = kernel;
        }

        static Training remembered(int kernel, boolean macro) {
            Training t = new Training(kernel);
            if (!macro) {
                t.epochs = (int) Prefs.get(PREFIX + "epochs", t.epochs);
                t.steps = (int) Prefs.get(PREFIX + "steps", t.steps);
                t.batch = (int) Prefs.get(PREFIX + "batch", t.batch);
                t.patch = (int) Prefs.get(PREFIX + "patch", t.patch);
                t.filters = (int) Prefs.get(PREFIX + "filters", t.filters);
                t.device = Devices.remembered(DEVICE_KEY);
            }
            return t;
        }

        void addFields(GenericDialog gd, boolean n2v) {
            gd.addNumericField("Epochs", epochs, 0);
            gd.addNumericField("Steps_per_epoch", steps, 0);
            gd.addNumericField("Batch_size", batch, 0);
            gd.addNumericField("Patch_size", patch, 0, 6, "pixels (multiple of 4)");
            gd.addNumericField("Filters", filters, 0, 6, "first U-Net level");
            gd.addNumericField("Kernel_size", kernel, 0);
            if (n2v) {
                gd.addNumericField("Masked_percent", maskedPercent, 2, 6, "%");
                gd.addCheckbox("N2V2 (fewer checkerboard artefacts)", n2v2);
            }
            gd.addNumericField("Learning_rate", learningRate, 5, 8, "Adam");
            gd.addNumericField("Seed", seed, 0);
            gd.addChoice(Devices.LABEL, Devices.CHOICES, device);
        }

        void read(GenericDialog gd, boolean n2v, boolean macro) throws FluoreconException {
            epochs = FluoreconCommand.atLeastOne(gd.getNextNumber(), "The number of epochs");
            steps = FluoreconCommand.atLeastOne(gd.getNextNumber(), "The number of steps per epoch");
            batch = FluoreconCommand.atLeastOne(gd.getNextNumber(), "The batch size");
            patch = FluoreconCommand.atLeastOne(gd.getNextNumber(), "The patch size");
            filters = FluoreconCommand.atLeastOne(gd.getNextNumber(), "The number of filters");
            kernel = FluoreconCommand.atLeastOne(gd.getNextNumber(), "The kernel size");
            if (n2v) {
                maskedPercent = gd.getNextNumber();
                n2v2 = gd.getNextBoolean();
            }
            learningRate = gd.getNextNumber();
            seed = (int) gd.getNextNumber();
            device = Devices.read(gd, DEVICE_KEY, macro);
            if (gd.invalidNumber()) {
                throw new FluoreconException("A field of the dialog is not a number.");
            }
            if (!(learningRate > 0 && learningRate < 1)) {
                throw new FluoreconException("The learning rate must be between 0 and 1; it is " + learningRate + ".");
            }
            if (!macro) {
                Prefs.set(PREFIX + "epochs", epochs);
                Prefs.set(PREFIX + "steps", steps);
                Prefs.set(PREFIX + "batch", batch);
                Prefs.set(PREFIX + "patch", patch);
                Prefs.set(PREFIX + "filters", filters);
            }
        }

        /** @return the training fields as the engine reads them ({@code training} of a call's options) */
        NativeOptions options(String name) {
            return new NativeOptions().put("name", name).put("epochs", epochs).put("steps_per_epoch", steps)
                    .put("batch", batch).put("patch", patch).put("filters", filters).put("kernel", kernel)
                    .put("learning_rate", learningRate).put("seed", seed);
        }

        /**
         * @param modelDir where to save the model, or null
         * @param denoise  also denoise the image with the trained model
         * @return the options of {@link NativeNn#n2v}
         */
        String n2vOptions(String name, double[] voxelNm, String modelDir, boolean denoise) {
            return new NativeOptions().put("voxel_nm", voxelNm).put("training", options(name))
                    .put("masked_percent", maskedPercent).put("n2v2", n2v2).put("model_dir", modelDir)
                    .put("denoise", denoise).put("device", device).toString();
        }

        /** @return the options of {@link NativeNn#careTrain} */
        String careOptions(String name, double[] voxelNm, boolean probabilistic, String modelDir) {
            return new NativeOptions().put("voxel_nm", voxelNm).put("training", options(name))
                    .put("probabilistic", probabilistic).put("model_dir", modelDir).put("device", device)
                    .toString();
        }
    }

    /** @return the current image, checked */
    static ImagePlus currentImage(String what) throws FluoreconException {
        ImagePlus imp = WindowManager.getCurrentImage();
        if (imp == null) {
            throw new FluoreconException("There is no image to " + what + ": open one first.");
        }
        Hyperstacks.checkSupported(imp, "The image");
        return imp;
    }

    /** @throws FluoreconException unless the image has one channel and one frame */
    static void checkSingleVolume(ImagePlus imp) throws FluoreconException {
        if (imp.getNChannels() > 1 || imp.getNFrames() > 1) {
            throw new FluoreconException("\"" + imp.getTitle() + "\" has " + imp.getNChannels() + " channel(s) and "
                    + imp.getNFrames() + " frame(s); training uses one channel of one time point. Pick one with"
                    + " Image › Duplicate….");
        }
    }

    /** Voxel size {x, y, z} in nm (1 nm when uncalibrated: the networks do not use it). */
    static double[] voxelNm(ImagePlus imp) {
        double[] v = Units.voxelSizeNm(imp.getCalibration());
        return v == null ? new double[] {1, 1, 1} : v;
    }

    /** @return the model folder as an absolute path, or fails with a message */
    static String modelFolder(String dir, boolean mustExist) throws FluoreconException {
        if (dir == null || dir.trim().isEmpty()) {
            throw new FluoreconException("Choose a model folder.");
        }
        File f = new File(dir.trim());
        if (mustExist && !new File(f, "model.json").isFile()) {
            throw new FluoreconException("\"" + f + "\" is not a model folder (it has no model.json).");
        }
        return f.getAbsolutePath();
    }

    static void logTime(String what, ImagePlus in, ImagePlus out, long start) {
        IJ.log(String.format(Locale.ROOT, "Fluorecon: %s \"%s\" → \"%s\" in %.1f s", what, in.getTitle(),
                out == null ? "" : out.getTitle(), (System.nanoTime() - start) * 1e-9));
    }
}
