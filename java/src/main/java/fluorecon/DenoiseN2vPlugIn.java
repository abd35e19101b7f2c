package fluorecon;

import ij.ImagePlus;
import ij.gui.GenericDialog;

/**
 * {@code Plugins › Fluorecon › Denoising › Denoise (Noise2Void)…}: one click. Trains Noise2Void on
 * the open image or stack (each channel and frame on its own) and denoises it; the loss per epoch
 * is plotted as training goes. The result "&lt;title&gt;-N2V" keeps dimensions and calibration.
 */
public class DenoiseN2vPlugIn extends FluoreconCommand {
    @Override
    void execute() throws FluoreconException {
        ImagePlus imp = Denoising.currentImage("denoise");
        boolean macro = calledWithOptions();
        Denoising.Training t = Denoising.Training.remembered(3, macro);
        GenericDialog gd = new FluoreconDialog("Denoise (Noise2Void)");
        gd.addMessage("Trains a Noise2Void network on this image, then denoises it.");
        t.addFields(gd, true);
        gd.showDialog();
        if (gd.wasCanceled()) {
            return;
        }
        t.read(gd, true, macro);
        Native.ensureLoaded();
        long start = System.nanoTime();
        int nc = imp.getNChannels();
        int nt = imp.getNFrames();
        float[][] volumes = new float[nc * nt][];
        String options = t.n2vOptions("n2v", Denoising.voxelNm(imp), null, true);
        TrainingProgress progress = new TrainingProgress("Noise2Void \"" + imp.getTitle() + "\"");
        try {
            for (int f = 1; f <= nt; f++) {
                for (int c = 1; c <= nc; c++) {
                    int part = (f - 1) * nc + (c - 1);
                    volumes[part] = NativeNn.n2v(Hyperstacks.readVolume(imp, c, f), imp.getWidth(), imp.getHeight(),
                            imp.getNSlices(), options, progress);
                }
            }
        } finally {
            progress.done();
        }
        ImagePlus result = Hyperstacks.createLike(imp, Dialogs.withoutExtension(imp.getTitle()) + "-N2V",
                volumes);
        Denoising.logTime("Noise2Void", imp, result, start);
        result.show();
    }
}
