package fluorecon;

import ij.ImagePlus;
import ij.ImageStack;
import ij.Prefs;
import ij.WindowManager;
import ij.gui.GenericDialog;
import ij.measure.Calibration;
import ij.measure.ResultsTable;

/** Localizations as an ImageJ ResultsTable with ThunderSTORM's column names and units. */
final class Localizations {
    /** Title of the table the commands write and read by default. */
    static final String TABLE = "Localizations";
    static final String[] COLUMNS = {"frame", "x [nm]", "y [nm]", "sigma [nm]", "intensity [photon]",
        "offset [photon]", "bkgstd [photon]", "uncertainty [nm]"};

    /** Preference prefix of the camera settings, shared by Localize Molecules and Deep-STORM. */
    static final String CAMERA_PREFS = "fluorecon.smlm.";

    private Localizations() {
    }

    /** The camera settings of a localization dialog: pixel size (nm), offset (ADU), e⁻/ADU, EM gain (0 = none). */
    static final class Camera {
        double pixelNm;
        double offset;
        double ePerAdu;
        double emGain;

        /** @return the engine's camera options (the pixel size goes beside them) */
        NativeOptions options() {
            return new NativeOptions().put("offset_adu", offset).put("electrons_per_adu", ePerAdu)
                    .put("em_gain", emGain);
        }
    }

    /** @return the options of {@link NativeSmlm#correctDrift}: blocks of {@code framesPerBlock} frames */
    /**
     * Refuses a Save_CSV path that is the file of an open image (a typo'd macro once replaced the
     * image's own .tif on disk) or an existing read-only file.
     *
     * @throws FluoreconException naming the image or the file
     */
    static void checkCsvPath(String csv) throws FluoreconException {
        if (csv.isEmpty()) {
            return;
        }
        java.util.Map<java.io.File, String> open = new java.util.LinkedHashMap<java.io.File, String>();
        int[] ids = ij.WindowManager.getIDList();
        for (int id : ids == null ? new int[0] : ids) {
            ImagePlus imp = ij.WindowManager.getImage(id);
            ij.io.FileInfo info = imp == null ? null : imp.getOriginalFileInfo();
            if (info != null && info.fileName != null && info.directory != null && !info.directory.isEmpty()) {
                open.put(new java.io.File(info.directory, info.fileName), imp.getTitle());
            }
        }
        String problem = csvPathProblem(new java.io.File(csv), open);
        if (problem != null) {
            throw new FluoreconException(problem);
        }
    }

    /** @return why {@code csv} must not be written ({@code open}: file → title of each open image), or null */
    static String csvPathProblem(java.io.File csv, java.util.Map<java.io.File, String> open) {
        for (java.util.Map.Entry<java.io.File, String> image : open.entrySet()) {
            if (sameFile(csv, image.getKey())) {
                return "Save_CSV names " + csv.getPath() + ", the file of the open image '" + image.getValue()
                        + "': the CSV would replace the image on disk. Choose another file name.";
            }
        }
        if (csv.isDirectory()) {
            return "Save_CSV names the folder " + csv.getPath() + "; give a file name (…/localizations.csv).";
        }
        if (csv.exists() && readOnly(csv)) {
            return "Save_CSV names " + csv.getPath() + ", which is read-only; Fluorecon does not replace a "
                    + "write-protected file. Choose another name or make it writable.";
        }
        return null;
    }

    /** Read-only by its permission bits (root may write anyway; what counts is what the owner meant). */
    private static boolean readOnly(java.io.File f) {
        try {
            java.util.Set<java.nio.file.attribute.PosixFilePermission> p = java.nio.file.Files
                    .getPosixFilePermissions(f.toPath());
            return !p.contains(java.nio.file.attribute.PosixFilePermission.OWNER_WRITE)
                    && !p.contains(java.nio.file.attribute.PosixFilePermission.GROUP_WRITE)
                    && !p.contains(java.nio.file.attribute.PosixFilePermission.OTHERS_WRITE);
        } catch (UnsupportedOperationException | java.io.IOException e) {
            return !f.canWrite();
        }
    }

    private static boolean sameFile(java.io.File a, java.io.File b) {
        try {
            if (a.exists() && b.exists()) {
                return java.nio.file.Files.isSameFile(a.toPath(), b.toPath());
            }
            return a.getCanonicalFile().equals(b.getCanonicalFile());
        } catch (java.io.IOException e) {
            return a.getAbsoluteFile().equals(b.getAbsoluteFile());
        }
    }

    static String driftOptions(double framesPerBlock) {
        return new NativeOptions().put("frames_per_block", (int) framesPerBlock).toString();
    }

    /**
     * The current image, checked to be a stack of raw camera frames of one channel.
     *
     * @param command what the frames are for, in messages ("localize", "Deep-STORM")
     */
    static ImagePlus currentFrames(String command) throws FluoreconException {
        ImagePlus imp = WindowManager.getCurrentImage();
        if (imp == null) {
            throw new FluoreconException("There is no image to " + command + ": open a stack of camera frames first.");
        }
        if (imp.getBitDepth() == 24) {
            throw new FluoreconException("\"" + imp.getTitle() + "\" is an RGB image; " + command + " needs the raw"
                    + " camera frames (8-, 16- or 32-bit).");
        }
        if (imp.getNChannels() > 1) {
            throw new FluoreconException("\"" + imp.getTitle() + "\" has " + imp.getNChannels()
                    + " channels; localize one channel at a time (Image › Color › Split Channels).");
        }
        return imp;
    }

    /**
     * Adds the pixel size (from the calibration when it is in nm or µm) and the camera fields, starting from
     * the remembered values (from the defaults when a macro runs the command).
     */
    static void addCameraFields(GenericDialog gd, ImagePlus imp, boolean macro) {
        Calibration cal = imp.getCalibration();
        double calibratedNm = Units.toNm(cal.pixelWidth, cal.getUnit());
        double pixelNm = calibratedNm > 0 ? calibratedNm : remembered("pixel_size", 100, macro);
        gd.addNumericField("Pixel_size", pixelNm, 2, 8, "nm (camera pixel in the sample)");
        gd.addMessage("Camera: photons = (value - offset) x e-/ADU / EM gain");
        gd.addNumericField("Offset", remembered("offset", 100, macro), 1, 8, "ADU");
        gd.addNumericField("Photoelectrons_per_ADU", remembered("photoelectrons_per_adu", 1, macro), 3, 8, "e-/ADU");
        gd.addNumericField("EM_gain", remembered("em_gain", 0, macro), 1, 8, "(0 = no EM gain, e.g. sCMOS)");
    }

    /** Reads the fields of {@link #addCameraFields} and remembers them unless a macro runs the command. */
    static Camera readCameraFields(GenericDialog gd, boolean macro) throws FluoreconException {
        Camera c = new Camera();
        c.pixelNm = gd.getNextNumber();
        c.offset = gd.getNextNumber();
        c.ePerAdu = gd.getNextNumber();
        c.emGain = gd.getNextNumber();
        FluoreconCommand.checkPositiveNm(c.pixelNm, "The pixel size");
        if (!macro) {
            Prefs.set(CAMERA_PREFS + "pixel_size", c.pixelNm);
            Prefs.set(CAMERA_PREFS + "offset", c.offset);
            Prefs.set(CAMERA_PREFS + "photoelectrons_per_adu", c.ePerAdu);
            Prefs.set(CAMERA_PREFS + "em_gain", c.emGain);
        }
        return c;
    }

    private static double remembered(String key, double fallback, boolean macro) {
        return macro ? fallback : Prefs.get(CAMERA_PREFS + key, fallback);
    }

    /** Receives consecutive whole frames (x fastest, frame after frame). */
    interface FrameSink {
        void push(float[] frames) throws FluoreconException;
    }

    /**
     * Hands every frame of {@code imp} to {@code sink} in chunks of {@code chunk} frames (virtual stacks are read
     * a chunk at a time), with the progress bar over the whole stack; Esc cancels between chunks.
     */
    static void pushFrames(ImagePlus imp, int chunk, JavaProgress progress, FrameSink sink) throws FluoreconException {
        ImageStack stack = imp.getStack();
        int w = imp.getWidth();
        int h = imp.getHeight();
        int n = stack.getSize();
        int chunks = (n + chunk - 1) / chunk;
        for (int c = 0; c < chunks; c++) {
            if (progress.cancelled()) {
                throw new CancelledException("cancelled by the user");
            }
            progress.startPart(c, chunks);
            int first = c * chunk;
            int count = Math.min(chunk, n - first);
            float[] frames = new float[count * w * h];
            for (int k = 0; k < count; k++) {
                float[] px = (float[]) stack.getProcessor(first + k + 1).convertToFloatProcessor().getPixels();
                System.arraycopy(px, 0, frames, k * w * h, w * h);
            }
            sink.push(frames);
            progress.fraction(1.0);
        }
    }

    /** A new table from packed localizations ({@link NativeSmlm#FIELDS} floats each), ids from 1. */
    static ResultsTable toTable(float[] locs) {
        ResultsTable rt = new ResultsTable();
        rt.showRowNumbers(false);
        int n = locs.length / NativeSmlm.FIELDS;
        for (int i = 0; i < n; i++) {
            rt.incrementCounter();
            rt.addValue("id", i + 1);
            for (int k = 0; k < NativeSmlm.FIELDS; k++) {
                rt.addValue(COLUMNS[k], locs[i * NativeSmlm.FIELDS + k]);
            }
        }
        return rt;
    }

    /**
     * Packs a table; frame, x [nm] and y [nm] are required, the other columns are 0 when missing.
     */
    static float[] fromTable(ResultsTable rt, String title) throws FluoreconException {
        int n = rt.size();
        float[] out = new float[n * NativeSmlm.FIELDS];
        StringBuilder missing = new StringBuilder();
        for (int k = 0; k < 3; k++) {
            if (!rt.columnExists(COLUMNS[k])) {
                missing.append(missing.length() > 0 ? ", " : "").append('"').append(COLUMNS[k]).append('"');
            }
        }
        if (missing.length() > 0) {
            throw new FluoreconException("Table \"" + title + "\" lacks the column(s) " + missing
                    + "; a localization table has ThunderSTORM's columns (frame, x [nm], y [nm], …).");
        }
        for (int k = 0; k < NativeSmlm.FIELDS; k++) {
            if (!rt.columnExists(COLUMNS[k])) {
                continue;
            }
            double[] col = rt.getColumnAsDoubles(rt.getColumnIndex(COLUMNS[k]));
            for (int i = 0; i < n; i++) {
                out[i * NativeSmlm.FIELDS + k] = (float) col[i];
            }
        }
        return out;
    }
}
