package fluorecon;

import ij.CompositeImage;
import ij.ImagePlus;
import ij.ImageStack;
import ij.measure.Calibration;
import ij.process.LUT;

/**
 * Converts between ImagePlus hyperstacks (channels c, slices z, frames t; 8, 16 or 32 bit) and
 * the float volumes the engine works on: one {@code float[nz * ny * nx]} per (channel, frame),
 * x fastest, planes in z order. Pixel values are the raw stored values (no density calibration).
 * The input ImagePlus is only read, never modified.
 */
final class Hyperstacks {
    private Hyperstacks() {
    }

    /**
     * Rejects images the engine cannot take.
     *
     * @param what how to name the image in the message, e.g. "The image" or "The PSF"
     */
    static void checkSupported(ImagePlus imp, String what) throws FluoreconException {
        if (imp.getType() == ImagePlus.COLOR_RGB) {
            throw new FluoreconException(what + " \"" + imp.getTitle() + "\" is RGB. RGB images are not"
                    + " supported: split the channels first (Image › Color › Split Channels).");
        }
    }

    /**
     * Reads the z-stack of one channel and frame.
     *
     * @param channel 1-based channel index, as in ImageJ
     * @param frame   1-based frame (time point) index
     * @return a new float[nz * ny * nx], x fastest
     */
    static float[] readVolume(ImagePlus imp, int channel, int frame) throws FluoreconException {
        checkSupported(imp, "The image");
        int nx = imp.getWidth();
        int ny = imp.getHeight();
        int nz = imp.getNSlices();
        int plane = nx * ny;
        float[] volume = new float[plane * nz];
        ImageStack stack = imp.getStack();
        for (int z = 1; z <= nz; z++) {
            Object pixels = stack.getPixels(imp.getStackIndex(channel, z, frame));
            copyPlane(pixels, volume, (z - 1) * plane, plane);
        }
        return volume;
    }

    private static void copyPlane(Object pixels, float[] dst, int offset, int n) {
        if (pixels instanceof byte[]) {
            byte[] p = (byte[]) pixels;
            for (int i = 0; i < n; i++) {
                dst[offset + i] = p[i] & 0xff;
            }
        } else if (pixels instanceof short[]) {
            short[] p = (short[]) pixels;
            for (int i = 0; i < n; i++) {
                dst[offset + i] = p[i] & 0xffff;
            }
        } else if (pixels instanceof float[]) {
            System.arraycopy(pixels, 0, dst, offset, n);
        } else {
            throw new IllegalArgumentException("unsupported pixel type " + pixels.getClass().getSimpleName());
        }
    }

    /**
     * Builds a new 32-bit image from per-(channel, frame) volumes. A hyperstack when
     * {@code nc > 1} or {@code nt > 1}; a composite image when {@code nc > 1}. The display range of
     * each channel spans its data.
     *
     * @param volumes index {@code (t - 1) * nc + (c - 1)} (channel fastest, 1-based c and t), each
     *                float[nz * ny * nx], x fastest; copied, so the caller may reuse them
     */
    static ImagePlus create(String title, int nx, int ny, int nc, int nz, int nt, float[][] volumes) {
        if (volumes.length != nc * nt) {
            throw new IllegalArgumentException(volumes.length + " volumes for " + nc + " channels × "
                    + nt + " frames");
        }
        int plane = nx * ny;
        ImageStack stack = new ImageStack(nx, ny);
        for (int t = 0; t < nt; t++) {
            for (int z = 0; z < nz; z++) {
                for (int c = 0; c < nc; c++) {
                    float[] volume = volumes[t * nc + c];
                    if (volume.length != plane * nz) {
                        throw new IllegalArgumentException("volume of " + volume.length + " floats for "
                                + nx + "×" + ny + "×" + nz);
                    }
                    float[] pixels = new float[plane];
                    System.arraycopy(volume, z * plane, pixels, 0, plane);
                    stack.addSlice(null, pixels);
                }
            }
        }
        ImagePlus imp = new ImagePlus(title, stack);
        imp.setDimensions(nc, nz, nt);
        if (nc > 1) {
            imp = new CompositeImage(imp, CompositeImage.COMPOSITE);
        }
        if (nc > 1 || nt > 1) {
            imp.setOpenAsHyperStack(true);
        }
        for (int c = 0; c < nc; c++) {
            double[] range = range(volumes, c, nc);
            imp.setC(c + 1);
            imp.setDisplayRange(range[0], range[1]);
        }
        imp.setC(1);
        return imp;
    }

    /**
     * Builds the result of processing {@code input} volume by volume: same title rules as
     * {@link #create}, the input's c/z/t dimensions, spatial and time calibration, and for a
     * composite input its display mode and colours.
     *
     * @param volumes one per (channel, frame) of {@code input}, indexed as in {@link #create}
     */
    static ImagePlus createLike(ImagePlus input, String title, float[][] volumes) {
        ImagePlus result = create(title, input.getWidth(), input.getHeight(),
                input.getNChannels(), input.getNSlices(), input.getNFrames(), volumes);
        result.setCalibration(spatialCalibration(input));
        if (input.isComposite() && result.isComposite()) {
            copyColours((CompositeImage) input, (CompositeImage) result);
        }
        return result;
    }

    /** @return a copy of the input's calibration without its density (pixel value) calibration */
    static Calibration spatialCalibration(ImagePlus input) {
        Calibration cal = input.getCalibration().copy();
        cal.disableDensityCalibration();
        return cal;
    }

    /** Copies channel colours and display mode, keeping the result's display ranges. */
    private static void copyColours(CompositeImage from, CompositeImage to) {
        LUT[] luts = from.getLuts();
        for (int c = 0; c < luts.length && c < to.getNChannels(); c++) {
            LUT old = to.getChannelLut(c + 1);
            LUT lut = (LUT) luts[c].clone();
            lut.min = old.min;
            lut.max = old.max;
            to.setChannelLut(lut, c + 1);
        }
        to.setMode(from.getMode());
    }

    /**
     * @return {min, max} over all frames of channel {@code c} (0-based), ignoring NaN; a range of 1
     *         when the channel is constant, {0, 1} when it has no finite value
     */
    private static double[] range(float[][] volumes, int c, int nc) {
        double min = Double.POSITIVE_INFINITY;
        double max = Double.NEGATIVE_INFINITY;
        for (int v = c; v < volumes.length; v += nc) {
            for (float x : volumes[v]) {
                if (x < min) {
                    min = x;
                }
                if (x > max) {
                    max = x;
                }
            }
        }
        if (max > min) {
            return new double[] {min, max};
        }
        return min <= max ? new double[] {min, min + 1} : new double[] {0, 1};
    }
}
