package fluorecon;

import ij.IJ;
import ij.ImagePlus;
import ij.Prefs;
import ij.gui.GenericDialog;

/**
 * {@code Plugins › Fluorecon › Denoising › Restore with model…}: applies a model folder (Noise2Void
 * or CARE) to every channel and frame of the open image, tiled, any size. Result
 * "&lt;title&gt;-restored" (and "&lt;title&gt;-uncertainty" for probabilistic CARE models) with the
 * input's dimensions and calibration.
 *
 * <p>Macro keys: {@code model_folder}, {@code uncertainty} (off unless named), {@code tile_size} 0
 * (automatic), {@code device} auto|cpu|cuda (the networks run on the CPU in this version; a CUDA
 * request is logged with the reason).
 */
public class RestorePlugIn extends FluoreconCommand {
    private static final String KEY = "fluorecon.nn.model";

    @Override
    void execute() throws FluoreconException {
        ImagePlus imp = Denoising.currentImage("restore");
        boolean macro = calledWithOptions();
        GenericDialog gd = new FluoreconDialog("Restore with model");
        gd.addDirectoryField("Model_folder", macro ? "" : Prefs.get(KEY, ""));
        gd.addCheckbox("Uncertainty image (probabilistic CARE)", false);
        gd.addNumericField("Tile_size", 0, 0, 6, "pixels (0 = automatic)");
        Devices.addChoice(gd, Denoising.DEVICE_KEY, macro);
        gd.showDialog();
        if (gd.wasCanceled()) {
            return;
        }
        String dir = Denoising.modelFolder(gd.getNextString(), true);
        boolean uncertainty = gd.getNextBoolean();
        int tile = (int) gd.getNextNumber();
        String device = Devices.read(gd, Denoising.DEVICE_KEY, macro);
        if (!macro) {
            Prefs.set(KEY, dir);
        }
        Native.ensureLoaded();
        IJ.log("Fluorecon model " + dir + ":\n" + NativeNn.modelInfo(dir).replaceAll("(?s)\"history\".*", "…"));
        long start = System.nanoTime();
        int nc = imp.getNChannels();
        int nt = imp.getNFrames();
        float[][] restored = new float[nc * nt][];
        float[][] sigma = new float[nc * nt][];
        String options = new NativeOptions().put("voxel_nm", Denoising.voxelNm(imp)).put("model_dir", dir)
                .put("uncertainty", uncertainty).put("tile", Math.max(0, tile)).put("device", device).toString();
        JavaProgress progress = new JavaProgress();
        try {
            for (int f = 1; f <= nt; f++) {
                for (int c = 1; c <= nc; c++) {
                    int part = (f - 1) * nc + (c - 1);
                    progress.startPart(part, restored.length);
                    float[][] out = NativeNn.restore(Hyperstacks.readVolume(imp, c, f), imp.getWidth(), imp.getHeight(),
                            imp.getNSlices(), options, progress);
                    restored[part] = out[0];
                    if (uncertainty) {
                        sigma[part] = out[1];
                    }
                }
            }
        } finally {
            progress.done();
        }
        String base = Dialogs.withoutExtension(imp.getTitle());
        ImagePlus result = Hyperstacks.createLike(imp, base + "-restored", restored);
        Denoising.logTime("restored", imp, result, start);
        result.show();
        if (uncertainty) {
            Hyperstacks.createLike(imp, base + "-uncertainty", sigma).show();
        }
    }
}
