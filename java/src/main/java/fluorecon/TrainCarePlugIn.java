package fluorecon;

import ij.ImagePlus;
import ij.WindowManager;
import ij.gui.GenericDialog;

/**
 * {@code Plugins › Fluorecon › Denoising › Train CARE…}: trains a CARE network on a pair of open
 * images of the same field (low and high quality, same size) and saves a model folder.
 */
public class TrainCarePlugIn extends FluoreconCommand {
    @Override
    void execute() throws FluoreconException {
        int[] ids = WindowManager.getIDList();
        if (ids == null || ids.length < 2) {
            throw new FluoreconException("Train CARE needs two open images: a low- and a high-quality one.");
        }
        String[] titles = new String[ids.length];
        for (int i = 0; i < ids.length; i++) {
            titles[i] = WindowManager.getImage(ids[i]).getTitle();
        }
        boolean macro = calledWithOptions();
        Denoising.Training t = Denoising.Training.remembered(5, macro);
        GenericDialog gd = new FluoreconDialog("Train CARE");
        gd.addChoice("Low_quality", titles, titles[0]);
        gd.addChoice("High_quality", titles, titles[1]);
        gd.addDirectoryField("Model_folder", "");
        gd.addCheckbox("Probabilistic (uncertainty output)", false);
        t.addFields(gd, false);
        gd.showDialog();
        if (gd.wasCanceled()) {
            return;
        }
        ImagePlus low = WindowManager.getImage(gd.getNextChoice());
        ImagePlus high = WindowManager.getImage(gd.getNextChoice());
        String dir = Denoising.modelFolder(gd.getNextString(), false);
        boolean probabilistic = gd.getNextBoolean();
        t.read(gd, false, macro);
        if (low == null || high == null) {
            throw new FluoreconException("Choose two open images.");
        }
        if (low == high) {
            throw new FluoreconException("The low- and high-quality images must be two different images.");
        }
        Hyperstacks.checkSupported(low, "The low-quality image");
        Hyperstacks.checkSupported(high, "The high-quality image");
        Denoising.checkSingleVolume(low);
        Denoising.checkSingleVolume(high);
        if (low.getWidth() != high.getWidth() || low.getHeight() != high.getHeight()
                || low.getNSlices() != high.getNSlices()) {
            throw new FluoreconException("\"" + low.getTitle() + "\" and \"" + high.getTitle()
                    + "\" differ in size; CARE needs two images of the same field.");
        }
        Native.ensureLoaded();
        long start = System.nanoTime();
        String options = t.careOptions(new java.io.File(dir).getName(), Denoising.voxelNm(low), probabilistic, dir);
        TrainingProgress progress = new TrainingProgress("CARE \"" + low.getTitle() + "\"");
        try {
            NativeNn.careTrain(Hyperstacks.readVolume(low, 1, 1), Hyperstacks.readVolume(high, 1, 1), low.getWidth(),
                    low.getHeight(), low.getNSlices(), options, progress);
        } finally {
            progress.done();
        }
        Denoising.logTime("trained CARE on", low, null, start);
    }
}
