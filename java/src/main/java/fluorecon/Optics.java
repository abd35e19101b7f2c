package fluorecon;

import ij.Prefs;
import ij.gui.GenericDialog;

/**
 * The optics a PSF model needs, shared by the Deconvolve and Generate PSF dialogs: numerical
 * aperture, emission wavelength (nm) and immersion refractive index, and the default sampling
 * (pixel size, z step) of an image without a length calibration. Interactive dialogs start
 * from the last values used (kept in ImageJ's preferences); macros from the fixed defaults.
 */
final class Optics {
    static final double DEFAULT_NA = 1.4;
    static final double DEFAULT_WAVELENGTH_NM = 520;
    static final double DEFAULT_IMMERSION_INDEX = 1.518;
    /** Pixel size in nm where the image gives none (it is not calibrated in lengths, or no image is open). */
    static final double DEFAULT_PIXEL_SIZE_NM = 100;
    /** Distance between z planes in nm where the image gives none. */
    static final double DEFAULT_Z_STEP_NM = 200;

    private static final String PREFIX = "fluorecon.optics.";

    /** Numerical aperture of the objective. */
    final double na;
    /** Emission wavelength in nm. */
    final double wavelengthNm;
    /** Refractive index of the immersion medium (1.518 for oil). */
    final double immersionIndex;

    Optics(double na, double wavelengthNm, double immersionIndex) {
        this.na = na;
        this.wavelengthNm = wavelengthNm;
        this.immersionIndex = immersionIndex;
    }

    /** @return NA 1.4, 520 nm, oil (1.518): what macros get for unnamed keys */
    static Optics defaults() {
        return new Optics(DEFAULT_NA, DEFAULT_WAVELENGTH_NM, DEFAULT_IMMERSION_INDEX);
    }

    /** @return the values of the last interactive dialog, else the defaults */
    static Optics remembered() {
        return new Optics(Prefs.get(PREFIX + "na", DEFAULT_NA),
                Prefs.get(PREFIX + "wavelength", DEFAULT_WAVELENGTH_NM),
                Prefs.get(PREFIX + "immersion", DEFAULT_IMMERSION_INDEX));
    }

    /** Adds the fields with macro keys {@code na}, {@code wavelength}, {@code immersion}. */
    void addFields(GenericDialog gd) {
        gd.addNumericField("NA", na, 2, 6, "numerical aperture");
        gd.addNumericField("Wavelength", wavelengthNm, 0, 6, "nm (emission)");
        gd.addNumericField("Immersion", immersionIndex, 3, 6, "refractive index");
    }

    /** Reads the fields added by {@link #addFields}, in the same order. */
    static Optics read(GenericDialog gd) {
        return new Optics(gd.getNextNumber(), gd.getNextNumber(), gd.getNextNumber());
    }

    /** @throws FluoreconException when the values cannot describe a microscope */
    void check() throws FluoreconException {
        if (!(immersionIndex >= 1)) {
            throw new FluoreconException("The immersion refractive index must be at least 1 (1.0 air, 1.33 water,"
                    + " 1.518 oil); it is " + immersionIndex + ".");
        }
        if (!(na > 0 && na <= immersionIndex)) {
            throw new FluoreconException("The NA must be above 0 and at most the immersion refractive index ("
                    + immersionIndex + "); it is " + na + ".");
        }
        if (!(wavelengthNm > 0)) {
            throw new FluoreconException("The emission wavelength must be a positive number of nm; it is "
                    + wavelengthNm + ".");
        }
    }

    /**
     * @return the options of {@link Native#generatePsf} and {@link Native#suggestPsfSize}: the engine's
     *         {@code PsfParams} for these optics, {@code model}, and the sampling in nm
     */
    String psfOptions(PsfModel model, double pixelSizeNm, double zStepNm) {
        return new NativeOptions().put("model", model.engineName).put("na", na).put("wavelength_nm", wavelengthNm)
                .put("immersion_index", immersionIndex).put("pixel_size_nm", pixelSizeNm).put("z_step_nm", zStepNm)
                .toString();
    }

    /** Makes these values the next interactive dialog's defaults. */
    void remember() {
        Prefs.set(PREFIX + "na", na);
        Prefs.set(PREFIX + "wavelength", wavelengthNm);
        Prefs.set(PREFIX + "immersion", immersionIndex);
    }
}
