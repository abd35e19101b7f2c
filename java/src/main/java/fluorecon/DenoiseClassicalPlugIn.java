package fluorecon;

import ij.IJ;
import ij.ImagePlus;
import ij.Prefs;
import ij.gui.GenericDialog;

/**
 * {@code Plugins › Fluorecon › Denoising › Denoise (classical)…}: no training. The Poisson–Gaussian
 * noise is estimated from each channel and frame of the open image (or taken from the camera's gain,
 * offset and read noise), stabilised by the generalised Anscombe transform and removed by BM3D; a stack
 * is denoised plane by plane. The log gives the noise model used. Result "&lt;title&gt;-BM3D" with the
 * input's dimensions and calibration.
 *
 * <p>Macro keys: {@code noise} (estimate|camera), and with {@code camera}: {@code gain} (ADU per photon),
 * {@code offset} (ADU), {@code read_noise} (ADU).
 */
public class DenoiseClassicalPlugIn extends FluoreconCommand {
    private static final String PREFIX = "fluorecon.classical.";
    static final String[] NOISE = {"estimate from the image", "camera parameters"};

    @Override
    void execute() throws FluoreconException {
        ImagePlus imp = Denoising.currentImage("denoise");
        boolean macro = calledWithOptions();
        String noise = NOISE[0];
        double gain = 1;
        double offset = 0;
        double readNoise = 1;
        if (!macro) {
            noise = Prefs.get(PREFIX + "noise", noise);
            gain = Prefs.get(PREFIX + "gain", gain);
            offset = Prefs.get(PREFIX + "offset", offset);
            readNoise = Prefs.get(PREFIX + "read_noise", readNoise);
        }
        GenericDialog gd = new GenericDialog("Denoise (classical)");
        gd.addMessage("Variance-stabilised BM3D with a Poisson-Gaussian noise model (no training).");
        gd.addChoice("Noise", NOISE, Dialogs.indexOf(NOISE, noise) >= 0 ? noise : NOISE[0]);
        gd.addNumericField("Gain", gain, decimals(gain, 3), 8, "ADU/photon (camera parameters only)");
        gd.addNumericField("Offset", offset, decimals(offset, 2), 8, "ADU");
        gd.addNumericField("Read_noise", readNoise, decimals(readNoise, 3), 8, "ADU (standard deviation)");
        gd.showDialog();
        if (gd.wasCanceled()) {
            return;
        }
        noise = gd.getNextChoice();
        gain = gd.getNextNumber();
        offset = gd.getNextNumber();
        readNoise = gd.getNextNumber();
        if (gd.invalidNumber()) {
            throw new FluoreconException("A field of the dialog is not a number.");
        }
        boolean camera = noise.equals(NOISE[1]);
        if (camera && !(gain > 0)) {
            throw new FluoreconException("The gain must be a positive number of ADU per photon; it is " + gain + ".");
        }
        if (camera && !(readNoise >= 0)) {
            throw new FluoreconException("The read noise must be at least 0 ADU; it is " + readNoise + ".");
        }
        if (!macro) {
            Prefs.set(PREFIX + "noise", noise);
            Prefs.set(PREFIX + "gain", gain);
            Prefs.set(PREFIX + "offset", offset);
            Prefs.set(PREFIX + "read_noise", readNoise);
        }
        Native.ensureLoaded();
        NativeOptions options = new NativeOptions().put("voxel_nm", Denoising.voxelNm(imp));
        if (camera) {
            options.put("camera", new NativeOptions().put("gain", gain).put("offset", offset).put("read_noise",
                    readNoise));
        } else {
            options.put("camera", (String) null);
        }
        long start = System.nanoTime();
        int nc = imp.getNChannels();
        int nt = imp.getNFrames();
        float[][] volumes = new float[nc * nt][];
        JavaProgress progress = new JavaProgress();
        try {
            for (int f = 1; f <= nt; f++) {
                for (int c = 1; c <= nc; c++) {
                    int part = (f - 1) * nc + (c - 1);
                    progress.startPart(part, volumes.length);
                    if (volumes.length > 1) {
                        IJ.log("Fluorecon: channel " + c + ", frame " + f + ":");
                    }
                    volumes[part] = NativeNn.denoiseClassical(Hyperstacks.readVolume(imp, c, f), imp.getWidth(),
                            imp.getHeight(), imp.getNSlices(), options.toString(), progress);
                }
            }
        } finally {
            progress.done();
        }
        ImagePlus result = Hyperstacks.createLike(imp, Dialogs.withoutExtension(imp.getTitle()) + "-BM3D", volumes);
        Denoising.logTime("GAT + BM3D", imp, result, start);
        result.show();
    }
}
