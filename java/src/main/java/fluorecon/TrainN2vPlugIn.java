package fluorecon;

import ij.ImagePlus;
import ij.gui.GenericDialog;

/**
 * {@code Plugins › Fluorecon › Denoising › Train Noise2Void…}: trains on the open image (one
 * channel, one frame; a 2D network learns from every plane) and saves a model folder
 * (model.safetensors + model.json) for {@code Restore with model…}.
 */
public class TrainN2vPlugIn extends FluoreconCommand {
    @Override
    void execute() throws FluoreconException {
        ImagePlus imp = Denoising.currentImage("train on");
        Denoising.checkSingleVolume(imp);
        boolean macro = calledWithOptions();
        Denoising.Training t = Denoising.Training.remembered(3, macro);
        GenericDialog gd = new FluoreconDialog("Train Noise2Void");
        gd.addDirectoryField("Model_folder", "");
        t.addFields(gd, true);
        gd.showDialog();
        if (gd.wasCanceled()) {
            return;
        }
        String dir = Denoising.modelFolder(gd.getNextString(), false);
        t.read(gd, true, macro);
        Native.ensureLoaded();
        long start = System.nanoTime();
        String options = t.n2vOptions(new java.io.File(dir).getName(), Denoising.voxelNm(imp), dir, false);
        TrainingProgress progress = new TrainingProgress("Noise2Void \"" + imp.getTitle() + "\"");
        try {
            NativeNn.n2v(Hyperstacks.readVolume(imp, 1, 1), imp.getWidth(), imp.getHeight(), imp.getNSlices(),
                    options, progress);
        } finally {
            progress.done();
        }
        Denoising.logTime("trained Noise2Void on", imp, null, start);
    }
}
