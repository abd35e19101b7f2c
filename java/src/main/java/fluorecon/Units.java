package fluorecon;

import ij.measure.Calibration;

import java.util.Locale;

/** Lengths from ImageJ calibrations, converted to nm. */
final class Units {
    private Units() {
    }

    /**
     * @param unit a length unit as ImageJ writes it ("nm", "µm", "um", "micron", "mm", …)
     * @return {@code value} in nm, or NaN when the unit is not a known length ("pixel", "inch", …)
     */
    static double toNm(double value, String unit) {
        String u = unit == null ? "" : unit.trim().toLowerCase(Locale.ROOT);
        if (u.equals("nm") || u.startsWith("nanomet")) {
            return value;
        }
        if (u.equals("\u00b5m") || u.equals("\u03bcm") || u.equals("um") || u.startsWith("micron")
                || u.startsWith("micromet")) {
            return value * 1e3;
        }
        if (u.equals("mm") || u.startsWith("millimet")) {
            return value * 1e6;
        }
        return Double.NaN;
    }

    /** @return {x, y, z} voxel size in nm, or null when the image is not calibrated in lengths */
    static double[] voxelSizeNm(Calibration cal) {
        double[] voxel = {toNm(cal.pixelWidth, cal.getUnit()), toNm(cal.pixelHeight, cal.getUnit()),
            toNm(cal.pixelDepth, cal.getZUnit())};
        for (double v : voxel) {
            if (!(v > 0)) {
                return null;
            }
        }
        return voxel;
    }
}
