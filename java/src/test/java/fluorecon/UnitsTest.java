package fluorecon;

import static org.junit.Assert.assertArrayEquals;
import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import ij.measure.Calibration;

import org.junit.Test;

public class UnitsTest {
    @Test
    public void convertsImageJLengthUnitsToNm() {
        assertEquals(65, Units.toNm(65, "nm"), 0);
        assertEquals(100, Units.toNm(0.1, "micron"), 1e-9);
        assertEquals(100, Units.toNm(0.1, "microns"), 1e-9);
        assertEquals(100, Units.toNm(0.1, "\u00b5m"), 1e-9);
        assertEquals(100, Units.toNm(0.1, "um"), 1e-9);
        assertEquals(2e6, Units.toNm(2, "mm"), 1e-3);
        assertTrue(Double.isNaN(Units.toNm(1, "pixel")));
        assertTrue(Double.isNaN(Units.toNm(1, "inch")));
    }

    @Test
    public void voxelSizeNeedsALengthCalibration() {
        assertNull(Units.voxelSizeNm(new Calibration()));
        Calibration cal = new Calibration();
        cal.pixelWidth = 0.065;
        cal.pixelHeight = 0.065;
        cal.pixelDepth = 0.3;
        cal.setUnit("micron");
        assertArrayEquals(new double[] {65, 65, 300}, Units.voxelSizeNm(cal), 1e-9);
    }
}
