package fluorecon;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import ij.CompositeImage;
import ij.ImagePlus;
import ij.ImageStack;
import ij.measure.Calibration;
import ij.process.ByteProcessor;
import ij.process.ColorProcessor;
import ij.process.FloatProcessor;
import ij.process.LUT;
import ij.process.ShortProcessor;

import java.awt.Color;

import org.junit.Test;

public class HyperstacksTest {
    private static final int NX = 3;
    private static final int NY = 2;

    /** A distinct value for every voxel of a small c/z/t image; 1-based c, z, t. */
    private static int value(int c, int z, int t, int i) {
        return 1000 * c + 100 * z + 10 * t + i;
    }

    /** A 16-bit hyperstack whose pixel values encode their position (see {@link #value}). */
    private static ImagePlus hyperstack(int nc, int nz, int nt) {
        ImageStack stack = new ImageStack(NX, NY);
        for (int t = 1; t <= nt; t++) {
            for (int z = 1; z <= nz; z++) {
                for (int c = 1; c <= nc; c++) {
                    short[] pixels = new short[NX * NY];
                    for (int i = 0; i < pixels.length; i++) {
                        pixels[i] = (short) value(c, z, t, i);
                    }
                    stack.addSlice(null, pixels);
                }
            }
        }
        ImagePlus imp = new ImagePlus("cells.tif", stack);
        imp.setDimensions(nc, nz, nt);
        imp.setOpenAsHyperStack(true);
        Calibration cal = imp.getCalibration();
        cal.pixelWidth = 0.065;
        cal.pixelHeight = 0.07;
        cal.pixelDepth = 0.2;
        cal.setUnit("micron");
        cal.frameInterval = 30;
        cal.setTimeUnit("s");
        return imp;
    }

    /** Every pixel of every plane, to check that an image was not modified. */
    private static float[][] snapshot(ImagePlus imp) {
        ImageStack stack = imp.getStack();
        float[][] planes = new float[stack.getSize()][];
        for (int n = 1; n <= stack.getSize(); n++) {
            planes[n - 1] = (float[]) stack.getProcessor(n).convertToFloat().getPixels();
        }
        return planes;
    }

    private static void assertVolumesEqual(float[][] expected, float[][] actual) {
        assertEquals(expected.length, actual.length);
        for (int i = 0; i < expected.length; i++) {
            assertArrayEquals(expected[i], actual[i], 0f);
        }
    }

    @Test
    public void reads8BitAsUnsigned() throws FluoreconException {
        byte[] pixels = {0, 1, 127, (byte) 128, (byte) 200, (byte) 255};
        ImagePlus imp = new ImagePlus("b", new ByteProcessor(NX, NY, pixels));
        assertArrayEquals(new float[] {0, 1, 127, 128, 200, 255}, Hyperstacks.readVolume(imp, 1, 1), 0f);
    }

    @Test
    public void reads16BitAsUnsigned() throws FluoreconException {
        short[] pixels = {0, 1, 1000, (short) 32768, (short) 60000, (short) 65535};
        ImagePlus imp = new ImagePlus("s", new ShortProcessor(NX, NY, pixels, null));
        assertArrayEquals(new float[] {0, 1, 1000, 32768, 60000, 65535}, Hyperstacks.readVolume(imp, 1, 1), 0f);
    }

    @Test
    public void reads32BitStackInZOrder() throws FluoreconException {
        ImageStack stack = new ImageStack(NX, NY);
        stack.addSlice(new FloatProcessor(NX, NY, new float[] {-1.5f, 0, 1, 2, 3, 4}));
        stack.addSlice(new FloatProcessor(NX, NY, new float[] {5, 6, 7, 8, 9, Float.NaN}));
        ImagePlus imp = new ImagePlus("f", stack);
        float[] volume = Hyperstacks.readVolume(imp, 1, 1);
        assertArrayEquals(new float[] {-1.5f, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, Float.NaN}, volume, 0f);
    }

    @Test
    public void readsEveryChannelAndFrameOfAHyperstack() throws FluoreconException {
        ImagePlus imp = hyperstack(2, 3, 2);
        float[][] before = snapshot(imp);
        for (int t = 1; t <= 2; t++) {
            for (int c = 1; c <= 2; c++) {
                float[] volume = Hyperstacks.readVolume(imp, c, t);
                assertEquals(NX * NY * 3, volume.length);
                for (int z = 1; z <= 3; z++) {
                    for (int i = 0; i < NX * NY; i++) {
                        assertEquals("c" + c + " z" + z + " t" + t + " i" + i,
                                value(c, z, t, i), volume[(z - 1) * NX * NY + i], 0f);
                    }
                }
            }
        }
        assertVolumesEqual(before, snapshot(imp));
    }

    @Test
    public void buildsAHyperstackLikeTheInput() throws FluoreconException {
        ImagePlus input = hyperstack(2, 3, 2);
        float[][] before = snapshot(input);
        float[][] volumes = new float[4][];
        for (int t = 1; t <= 2; t++) {
            for (int c = 1; c <= 2; c++) {
                volumes[(t - 1) * 2 + (c - 1)] = Hyperstacks.readVolume(input, c, t);
            }
        }

        ImagePlus result = Hyperstacks.createLike(input, "cells-RL10", volumes);

        assertEquals("cells-RL10", result.getTitle());
        assertEquals(32, result.getBitDepth());
        assertArrayEquals(new int[] {NX, NY, 2, 3, 2}, result.getDimensions());
        assertTrue(result.isComposite());
        assertTrue(result.getOpenAsHyperStack());
        for (int t = 1; t <= 2; t++) {
            for (int c = 1; c <= 2; c++) {
                assertArrayEquals(volumes[(t - 1) * 2 + (c - 1)], Hyperstacks.readVolume(result, c, t), 0f);
            }
        }
        Calibration cal = result.getCalibration();
        assertEquals(0.065, cal.pixelWidth, 0);
        assertEquals(0.07, cal.pixelHeight, 0);
        assertEquals(0.2, cal.pixelDepth, 0);
        assertEquals("micron", cal.getUnit());
        assertEquals(30, cal.frameInterval, 0);
        assertEquals("s", cal.getTimeUnit());
        assertVolumesEqual(before, snapshot(input));
        assertEquals("cells.tif", input.getTitle());
        assertArrayEquals(new int[] {NX, NY, 2, 3, 2}, input.getDimensions());
        assertEquals(16, input.getBitDepth());
    }

    @Test
    public void singleChannelSingleFrameGivesAPlainStack() {
        float[] volume = new float[NX * NY * 4];
        for (int i = 0; i < volume.length; i++) {
            volume[i] = i;
        }
        ImagePlus imp = Hyperstacks.create("psf", NX, NY, 1, 4, 1, new float[][] {volume});
        assertArrayEquals(new int[] {NX, NY, 1, 4, 1}, imp.getDimensions());
        assertFalse(imp.isComposite());
        assertEquals(0, imp.getDisplayRangeMin(), 0);
        assertEquals(volume.length - 1, imp.getDisplayRangeMax(), 0);
    }

    @Test
    public void copiesChannelColoursOfACompositeInput() {
        ImagePlus gray = hyperstack(2, 1, 1);
        CompositeImage input = new CompositeImage(gray, CompositeImage.COLOR);
        input.setChannelLut(LUT.createLutFromColor(Color.magenta), 1);
        input.setChannelLut(LUT.createLutFromColor(Color.green), 2);
        float[][] volumes = {new float[NX * NY], new float[NX * NY]};

        CompositeImage result = (CompositeImage) Hyperstacks.createLike(input, "out", volumes);

        assertEquals(CompositeImage.COLOR, result.getMode());
        assertEquals(Color.magenta.getRGB(), result.getChannelLut(1).getRGB(255));
        assertEquals(Color.green.getRGB(), result.getChannelLut(2).getRGB(255));
    }

    @Test
    public void rejectsRgb() {
        ImagePlus rgb = new ImagePlus("photo.jpg", new ColorProcessor(NX, NY));
        try {
            Hyperstacks.readVolume(rgb, 1, 1);
            fail("RGB accepted");
        } catch (FluoreconException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("RGB images are not supported: split the channels"
                    + " first (Image › Color › Split Channels)"));
            assertTrue(e.getMessage(), e.getMessage().contains("photo.jpg"));
        }
    }
}
