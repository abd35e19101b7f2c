package fluorecon;

import ij.IJ;
import ij.ImagePlus;
import ij.Prefs;
import ij.WindowManager;
import ij.gui.GenericDialog;
import ij.gui.OvalRoi;
import ij.gui.Overlay;
import ij.gui.TextRoi;
import ij.measure.Calibration;
import ij.measure.ResultsTable;
import ij.process.FloatProcessor;

import java.awt.Color;
import java.util.List;
import java.util.Locale;

/**
 * Plugins › Fluorecon › SIM › SIM Reconstruction…: 2D Wiener SIM with automatic estimation of the
 * illumination pattern (k0, phase, modulation per direction), fairSIM-style. The current image
 * holds the raw frames: per channel, its z (and t) planes are time points (slowest), each z ×
 * angles × phases frames in the chosen order (PAZ: phase fastest, then angle, then z). Outputs new
 * images: "&lt;title&gt;-SIM" (2× the pixels, calibration halved), optionally the widefield sum and
 * a Wiener-filtered widefield on the same grid, a results table "SIM parameters" and a Fourier view
 * with the detected pattern peaks marked.
 *
 * <p>Macro keys and defaults: {@code na} 1.2, {@code wavelength} 525 (emission, nm),
 * {@code pixel_size} (nm; required for an image not calibrated in nm/µm), {@code angles} 3,
 * {@code phases} 3, {@code order} PAZ|PZA|ZAP, {@code time_points} 0 (= automatic: the hyperstack's
 * t when its z holds the frames, else 1), {@code estimate_per_plane}, {@code wiener} 0 (automatic),
 * {@code apodization_cutoff} 0 (at the SIM support), {@code apodization_bend} 0.9, {@code otf_attenuation} 0.3,
 * {@code zero_order_suppression} 0.95 (0 = off),
 * {@code otf} ([None: model OTF] or the title of an open bead image), {@code background} 0 (counts),
 * {@code edge_taper} 12 (px), {@code widefield}, {@code wiener_widefield}, {@code fourier_view},
 * {@code results_table}, {@code allow_failed_estimate} (reconstruct even when the pattern
 * estimate of a direction failed; otherwise the command stops with an error), {@code device} auto|cpu|cuda (in the CUDA build the Wiener
 * reconstruction runs on the GPU, pattern estimation on the CPU; a CUDA request that cannot be
 * honoured is logged with the reason, and the log names the device that ran). Checkboxes are
 * off in macros unless named.
 */
public class SimReconstructPlugIn extends FluoreconCommand {
    static final String[] ORDERS = {"PAZ", "PZA", "ZAP"};
    static final String MODEL_OTF = "[None: model OTF]";
    static final String TABLE = "SIM parameters";
    private static final String PREFIX = "fluorecon.sim.";
    private static final String[] FLAG_NAMES = {"no stripes", "low modulation", "implausible k0",
        "uneven angles", "inconsistent k0"};

    @Override
    void execute() throws FluoreconException {
        ImagePlus imp = WindowManager.getCurrentImage();
        if (imp == null) {
            throw new FluoreconException("There is no image: open the raw SIM frames first.");
        }
        Hyperstacks.checkSupported(imp, "The SIM stack");
        if (imp.getNChannels() > 1 && imp.getNSlices() * imp.getNFrames() == 1) {
            throw new FluoreconException("\"" + imp.getTitle() + "\" has " + imp.getNChannels() + " channels of one"
                    + " frame each: the raw SIM frames must be its slices (z) or frames (t). Use Image › Hyperstacks ›"
                    + " Re-order Hyperstack... (channels ↔ slices), or Image › Properties (channels 1, slices "
                    + imp.getNChannels() + ").");
        }
        List<ImagePlus> others = Dialogs.otherImages(imp);
        Settings s = showDialog(imp, others);
        if (s == null) {
            return;
        }
        Native.ensureLoaded();
        if (!imp.lockSilently()) {
            throw new FluoreconException("\"" + imp.getTitle() + "\" is in use by another command; try again"
                    + " when it has finished.");
        }
        long start = System.nanoTime();
        Output out;
        try {
            out = reconstruct(imp, s);
        } finally {
            imp.unlock();
        }
        IJ.log(String.format(Locale.ROOT, "Fluorecon: SIM reconstruction of \"%s\" (%d frames × %d channel(s),"
                + " %s, %d angles × %d phases) → \"%s\" in %.2f s", imp.getTitle(),
                imp.getNSlices() * imp.getNFrames(), imp.getNChannels(), s.order, s.angles, s.phases,
                out.sim.getTitle(), (System.nanoTime() - start) * 1e-9));
        // The SIM result is shown last, so that it is the active image after the command (a
        // recorded saveAs saves it).
        if (out.widefield != null) {
            out.widefield.show();
        }
        if (out.wienerWidefield != null) {
            out.wienerWidefield.show();
        }
        if (out.fourier != null) {
            out.fourier.show();
        }
        if (s.table) {
            out.table.show(TABLE);
        }
        out.sim.show();
    }

    /** The images and table one run produces. */
    private static final class Output {
        ImagePlus sim;
        ImagePlus widefield;
        ImagePlus wienerWidefield;
        ImagePlus fourier;
        ResultsTable table = new ResultsTable();
    }

    /** Reconstructs every channel; the input is only read. */
    private static Output reconstruct(ImagePlus imp, Settings s) throws FluoreconException {
        int nx = imp.getWidth();
        int ny = imp.getHeight();
        int nc = imp.getNChannels();
        int nz = imp.getNSlices();
        int nt = imp.getNFrames();
        int frames = nz * nt;
        int timePoints = s.timePoints > 0 ? s.timePoints
                : (nt > 1 && nz % (s.angles * s.phases) == 0 ? nt : 1);
        float[] psf = null;
        if (s.psfImage != null) {
            Hyperstacks.checkSupported(s.psfImage, "The PSF");
            psf = Hyperstacks.readVolume(s.psfImage, 1, 1);
        }
        float[][] sim = new float[nc][];
        float[][] wf = new float[nc][];
        float[][] wwf = new float[nc][];
        int planes = 0;
        Output out = new Output();
        JavaProgress progress = new JavaProgress();
        try {
            for (int c = 1; c <= nc; c++) {
                progress.startPart(c - 1, nc);
                float[] raw = new float[frames * nx * ny];
                for (int t = 1; t <= nt; t++) {
                    float[] volume = Hyperstacks.readVolume(imp, c, t);
                    System.arraycopy(volume, 0, raw, (t - 1) * nz * nx * ny, volume.length);
                }
                SimResult r = Native.simReconstruct(raw, nx, ny, frames, psf,
                        psf == null ? 0 : s.psfImage.getWidth(), psf == null ? 0 : s.psfImage.getHeight(),
                        psf == null ? 0 : s.psfImage.getNSlices(), s.options(timePoints, s.fourier && c == 1),
                        progress);
                sim[c - 1] = r.sim;
                wf[c - 1] = r.widefield;
                wwf[c - 1] = r.wienerWidefield;
                planes = r.planes;
                addRows(out.table, r.parameters, s.angles, c, s.perPlane);
                logParameters(r.parameters, s.angles, nc > 1 ? c : 0);
                if (r.fourierView != null) {
                    out.fourier = fourierView(r.fourierView, 2 * nx, 2 * ny, r.parameters, s, imp);
                }
            }
        } finally {
            progress.done();
        }
        // A plain stack of frames along t keeps its time axis.
        int outZ = planes;
        int outT = timePoints;
        if (nz == 1 && nt > 1 && timePoints == 1) {
            outZ = 1;
            outT = planes;
        }
        String base = Dialogs.withoutExtension(imp.getTitle());
        out.sim = image(base + "-SIM", imp, s, nc, outZ, outT, sim);
        if (s.widefield) {
            out.widefield = image(base + "-widefield", imp, s, nc, outZ, outT, wf);
        }
        if (s.wienerWidefield) {
            out.wienerWidefield = image(base + "-Wiener widefield", imp, s, nc, outZ, outT, wwf);
        }
        return out;
    }

    /**
     * An output image on the 2× grid with the input's calibration, pixel size halved. The engine's
     * planes are (t, z) with t slowest, which is {@link Hyperstacks#create}'s volume order when each
     * volume is one time point; so each channel's planes are split into time points here.
     */
    private static ImagePlus image(String title, ImagePlus input, Settings s, int nc, int nz, int nt,
            float[][] channels) {
        int plane = 4 * input.getWidth() * input.getHeight();
        float[][] volumes = new float[nc * nt][];
        for (int c = 0; c < nc; c++) {
            for (int t = 0; t < nt; t++) {
                float[] v = new float[nz * plane];
                System.arraycopy(channels[c], t * nz * plane, v, 0, v.length);
                volumes[t * nc + c] = v;
            }
        }
        ImagePlus result = Hyperstacks.create(title, 2 * input.getWidth(), 2 * input.getHeight(), nc, nz, nt,
                volumes);
        Calibration cal = Hyperstacks.spatialCalibration(input);
        if (s.voxelFromDialog) {
            cal.setUnit("nm");
            cal.pixelWidth = s.pixelSizeNm / 2;
            cal.pixelHeight = s.pixelSizeNm / 2;
        } else {
            cal.pixelWidth /= 2;
            cal.pixelHeight /= 2;
        }
        cal.xOrigin *= 2;
        cal.yOrigin *= 2;
        result.setCalibration(cal);
        return result;
    }

    /** Adds one row per direction (and per plane when estimated per plane) to {@code table}. */
    private static void addRows(ResultsTable table, double[] params, int angles, int channel, boolean perPlane) {
        int fields = SimResult.PARAM_FIELDS;
        int sets = params.length / (angles * fields);
        // Set 0 is the reference estimate; sets 1.. are the planes. Estimated once, the planes
        // repeat the reference: show it once.
        int first = perPlane ? 1 : 0;
        int last = perPlane ? sets - 1 : 0;
        for (int set = first; set <= last; set++) {
            for (int a = 0; a < angles; a++) {
                int o = (set * angles + a) * fields;
                table.incrementCounter();
                table.addValue("Channel", channel);
                table.addValue("Plane", perPlane ? String.valueOf(set) : "all");
                table.addValue("Angle", a + 1);
                table.addValue("k0 x [px]", params[o]);
                table.addValue("k0 y [px]", params[o + 1]);
                table.addValue("k0 [px]", Math.hypot(params[o], params[o + 1]));
                table.addValue("k0 [1/µm]", Math.hypot(params[o + 2], params[o + 3]));
                table.addValue("Direction [deg]", params[o + 4]);
                table.addValue("Line spacing [nm]", params[o + 5]);
                table.addValue("Phase [rad]", params[o + 6]);
                table.addValue("Modulation", params[o + 7]);
                table.addValue("Modulation used", params[o + 8]);
                table.addValue("Peak ratio", params[o + 9]);
                table.addValue("Quality", flags((int) params[o + 10]));
            }
        }
    }

    private static String flags(int bits) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < FLAG_NAMES.length; i++) {
            if ((bits & (1 << i)) != 0) {
                sb.append(sb.length() == 0 ? "" : "; ").append(FLAG_NAMES[i]);
            }
        }
        return sb.length() == 0 ? "ok" : sb.toString();
    }

    private static void logParameters(double[] params, int angles, int channel) {
        int fields = SimResult.PARAM_FIELDS;
        for (int a = 0; a < angles; a++) {
            int o = a * fields;
            IJ.log(String.format(Locale.ROOT, "  %sangle %d: k0 = %.3f px (%.4f /µm), direction %.2f°, line"
                    + " spacing %.1f nm, phase %.3f rad, modulation %.3f (%s)",
                    channel > 0 ? "channel " + channel + ", " : "", a + 1, Math.hypot(params[o], params[o + 1]),
                    Math.hypot(params[o + 2], params[o + 3]), params[o + 4], params[o + 5], params[o + 6],
                    params[o + 7], flags((int) params[o + 10])));
        }
    }

    /**
     * The Fourier view of the SIM image with circles at the detected pattern peaks (±k0 per
     * direction, yellow), the widefield cutoff (cyan) and the SIM support (magenta).
     */
    private static ImagePlus fourierView(float[] pixels, int fx, int fy, double[] params, Settings s,
            ImagePlus input) {
        ImagePlus view = new ImagePlus(Dialogs.withoutExtension(input.getTitle()) + "-SIM Fourier view",
                new FloatProcessor(fx, fy, pixels));
        Overlay overlay = new Overlay();
        double cx = fx / 2;
        double cy = fy / 2;
        int fields = SimResult.PARAM_FIELDS;
        // Fourier-grid pixels per cycle/µm: the 2× grid of fx pixels of (p/2) µm.
        double perUmX = fx * s.pixelSizeNm * 1e-3 / 2;
        double perUmY = fy * s.pixelSizeNm * 1e-3 / 2;
        double kc = 2 * s.na / (s.wavelengthNm * 1e-3);
        double k0max = 0;
        for (int a = 0; a < s.angles; a++) {
            int o = a * fields;
            k0max = Math.max(k0max, Math.hypot(params[o + 2], params[o + 3]));
            for (int sign = -1; sign <= 1; sign += 2) {
                double x = cx + sign * params[o];
                double y = cy + sign * params[o + 1];
                OvalRoi peak = new OvalRoi(x - 6, y - 6, 12, 12);
                peak.setStrokeColor(Color.YELLOW);
                overlay.add(peak);
            }
        }
        double[] radii = {kc, kc + k0max};
        Color[] colours = {Color.CYAN, Color.MAGENTA};
        for (int i = 0; i < radii.length; i++) {
            double rx = radii[i] * perUmX;
            double ry = radii[i] * perUmY;
            OvalRoi circle = new OvalRoi(cx - rx, cy - ry, 2 * rx, 2 * ry);
            circle.setStrokeColor(colours[i]);
            overlay.add(circle);
        }
        // Legend, top left: what the marks are.
        String[] legend = {"yellow: pattern peaks ±k0", "cyan: widefield cutoff", "magenta: SIM support"};
        Color[] legendColours = {Color.YELLOW, Color.CYAN, Color.MAGENTA};
        java.awt.Font font = new java.awt.Font("SansSerif", java.awt.Font.PLAIN, Math.max(12, fx / 60));
        for (int i = 0; i < legend.length; i++) {
            TextRoi label = new TextRoi(4, 4 + i * (font.getSize() + 4), legend[i], font);
            label.setStrokeColor(legendColours[i]);
            overlay.add(label);
        }
        view.setOverlay(overlay);
        view.getProcessor().resetMinAndMax();
        return view;
    }

    /** @return whether the macro options name {@code key} */
    private static boolean macroHasKey(String key) {
        String options = ij.Macro.getOptions();
        return options != null && (" " + options).contains(" " + key + "=");
    }

    /** @return the checked settings, or null when the dialog was cancelled */
    private static Settings showDialog(ImagePlus imp, List<ImagePlus> others) throws FluoreconException {
        boolean macro = calledWithOptions();
        Settings s = macro ? new Settings() : Settings.remembered();
        double[] calibrated = Units.voxelSizeNm(imp.getCalibration());
        String[] otfChoices = new String[others.size() + 1];
        otfChoices[0] = MODEL_OTF;
        for (int i = 0; i < others.size(); i++) {
            otfChoices[i + 1] = others.get(i).getTitle();
        }

        GenericDialog gd = new FluoreconDialog("SIM Reconstruction");
        gd.addNumericField("NA", s.na, 2, 6, "numerical aperture");
        gd.addNumericField("Wavelength", s.wavelengthNm, 0, 6, "nm (emission)");
        if (calibrated == null) {
            gd.addMessage("The image is not calibrated in nm or µm:");
            gd.addNumericField("Pixel_size", s.pixelSizeNm, 1, 6, "nm (camera pixel in the sample)");
        }
        gd.addNumericField("Angles", s.angles, 0);
        gd.addNumericField("Phases", s.phases, 0);
        gd.addChoice("Order", ORDERS, s.order);
        gd.addNumericField("Time_points", s.timePoints, 0, 6, "(0 = automatic)");
        gd.addCheckbox("Estimate_per_plane", s.perPlane);
        gd.addNumericField("Wiener", s.wiener, decimals(s.wiener, 3), 8, "parameter w (0 = automatic)");
        gd.addNumericField("Apodization_cutoff", s.apodizationCutoff, 2, 6, "× widefield cutoff (0 = SIM support)");
        gd.addNumericField("Apodization_bend", s.apodizationBend, 2, 6, "");
        gd.addNumericField("OTF_attenuation", s.otfAttenuation, 2, 6, "(1 = ideal OTF)");
        gd.addNumericField("Zero_order_suppression", s.zeroOrder, 2, 6, "(0 = off)");
        gd.addChoice("OTF", otfChoices, Dialogs.indexOf(otfChoices, s.otfChoice) >= 0 ? s.otfChoice : MODEL_OTF);
        gd.addNumericField("Background", s.background, decimals(s.background, 1), 8, "counts");
        gd.addNumericField("Edge_taper", s.taperPx, 0, 6, "px");
        gd.addCheckbox("Widefield", s.widefield);
        gd.addCheckbox("Wiener_widefield", s.wienerWidefield);
        gd.addCheckbox("Fourier_view", s.fourier);
        gd.addCheckbox("Results_table", s.table);
        gd.addCheckbox("Allow_failed_estimate", s.allowFailedEstimate);
        gd.addChoice(Devices.LABEL, Devices.CHOICES, s.device);
        gd.showDialog();
        if (gd.wasCanceled()) {
            return null;
        }
        s.na = gd.getNextNumber();
        s.wavelengthNm = gd.getNextNumber();
        s.voxelFromDialog = calibrated == null;
        if (s.voxelFromDialog && macro && !macroHasKey("pixel_size")) {
            throw new FluoreconException("\"" + imp.getTitle() + "\" is not calibrated in nm or µm: give the camera"
                    + " pixel size in the sample (pixel_size=… in nm) or calibrate the image (Image › Properties).");
        }
        if (s.voxelFromDialog) {
            s.pixelSizeNm = gd.getNextNumber();
        } else {
            s.pixelSizeNm = calibrated[0];
        }
        double angles = gd.getNextNumber();
        double phases = gd.getNextNumber();
        s.order = gd.getNextChoice().toUpperCase(Locale.ROOT);
        double timePoints = gd.getNextNumber();
        s.perPlane = gd.getNextBoolean();
        s.wiener = gd.getNextNumber();
        s.apodizationCutoff = gd.getNextNumber();
        s.apodizationBend = gd.getNextNumber();
        s.otfAttenuation = gd.getNextNumber();
        s.zeroOrder = gd.getNextNumber();
        String otf = gd.getNextChoice();
        s.background = gd.getNextNumber();
        double taper = gd.getNextNumber();
        s.widefield = gd.getNextBoolean();
        s.wienerWidefield = gd.getNextBoolean();
        s.fourier = gd.getNextBoolean();
        s.table = gd.getNextBoolean();
        s.allowFailedEstimate = gd.getNextBoolean();
        s.device = Devices.check(gd.getNextChoice());
        if (gd.invalidNumber()) {
            throw new FluoreconException("A field of the SIM Reconstruction dialog is not a number.");
        }
        s.angles = atLeastOne(angles, "The number of angles");
        s.phases = atLeastOne(phases, "The number of phases");
        if (s.phases < 3) {
            throw new FluoreconException("SIM needs at least 3 phases per angle; got " + s.phases + ".");
        }
        if (!(timePoints >= 0 && timePoints == Math.rint(timePoints))) {
            throw new FluoreconException("The number of time points must be 0 (automatic) or a whole number;"
                    + " it is " + timePoints + ".");
        }
        s.timePoints = (int) timePoints;
        if (!(taper >= 0 && taper == Math.rint(taper))) {
            throw new FluoreconException("The edge taper must be a whole number of pixels, 0 or more.");
        }
        s.taperPx = (int) taper;
        if (Dialogs.indexOf(ORDERS, s.order) < 0) {
            throw new FluoreconException("Unknown frame order \"" + s.order + "\": use PAZ, PZA or ZAP.");
        }
        int otfIndex = Dialogs.indexOf(otfChoices, otf);
        if (otfIndex < 0) {
            otfIndex = Dialogs.indexOf(otfChoices, "[" + otf + "]");
        }
        if (otfIndex < 0) {
            throw new FluoreconException("OTF \"" + otf + "\" is neither " + MODEL_OTF
                    + " nor an open image (other than the SIM stack).");
        }
        s.otfChoice = otfChoices[otfIndex];
        s.psfImage = otfIndex == 0 ? null : others.get(otfIndex - 1);
        checkPositiveNm(s.pixelSizeNm, "The pixel size");
        checkPositiveNm(s.wavelengthNm, "The wavelength");
        if (!macro) {
            s.remember();
        }
        return s;
    }

    /** The dialog's values; lengths in nm. */
    static final class Settings {
        double na = 1.2;
        double wavelengthNm = 525;
        double pixelSizeNm = 80;
        boolean voxelFromDialog;
        int angles = 3;
        int phases = 3;
        String order = ORDERS[0];
        int timePoints;
        boolean perPlane;
        double wiener = 0;
        double apodizationCutoff = 0;
        double apodizationBend = 0.9;
        double otfAttenuation = 0.3;
        double zeroOrder = 0.95;
        String otfChoice = MODEL_OTF;
        ImagePlus psfImage;
        double background;
        int taperPx = 12;
        boolean widefield;
        boolean wienerWidefield;
        boolean fourier;
        boolean table;
        boolean allowFailedEstimate;
        String device = Devices.CHOICES[0];

        static Settings remembered() {
            Settings s = new Settings();
            s.na = Prefs.get(PREFIX + "na", s.na);
            s.wavelengthNm = Prefs.get(PREFIX + "wavelength", s.wavelengthNm);
            s.pixelSizeNm = Prefs.get(PREFIX + "pixel_size", s.pixelSizeNm);
            s.angles = (int) Prefs.get(PREFIX + "angles", s.angles);
            s.phases = (int) Prefs.get(PREFIX + "phases", s.phases);
            s.order = Prefs.get(PREFIX + "order", s.order);
            if (Dialogs.indexOf(ORDERS, s.order) < 0) {
                s.order = ORDERS[0];
            }
            s.timePoints = (int) Prefs.get(PREFIX + "time_points", s.timePoints);
            s.perPlane = Prefs.get(PREFIX + "per_plane", s.perPlane);
            s.wiener = Prefs.get(PREFIX + "wiener", s.wiener);
            s.apodizationCutoff = Prefs.get(PREFIX + "apodization_cutoff", s.apodizationCutoff);
            s.apodizationBend = Prefs.get(PREFIX + "apodization_bend", s.apodizationBend);
            s.otfAttenuation = Prefs.get(PREFIX + "otf_attenuation", s.otfAttenuation);
            s.zeroOrder = Prefs.get(PREFIX + "zero_order_suppression", s.zeroOrder);
            s.otfChoice = Prefs.get(PREFIX + "otf", s.otfChoice);
            s.background = Prefs.get(PREFIX + "background", s.background);
            s.taperPx = (int) Prefs.get(PREFIX + "edge_taper", s.taperPx);
            // Interactive users get the comparison images and the table unless they unticked them.
            s.widefield = Prefs.get(PREFIX + "widefield", true);
            s.wienerWidefield = Prefs.get(PREFIX + "wiener_widefield", true);
            s.fourier = Prefs.get(PREFIX + "fourier_view", true);
            s.table = Prefs.get(PREFIX + "results_table", true);
            s.allowFailedEstimate = Prefs.get(PREFIX + "allow_failed_estimate", false);
            s.device = Devices.remembered(PREFIX + "device");
            return s;
        }

        /** @return the options of {@link Native#simReconstruct} */
        String options(int timePoints, boolean fourierView) {
            return new NativeOptions().put("pixel_size_nm", pixelSizeNm).put("na", na)
                    .put("wavelength_nm", wavelengthNm).put("angles", angles).put("phases", phases).put("order", order)
                    .put("time_points", timePoints).put("estimate_per_plane", perPlane).put("wiener", wiener)
                    .put("apodization_cutoff", apodizationCutoff).put("apodization_bend", apodizationBend)
                    .put("otf_attenuation", otfAttenuation).put("zero_order_strength", zeroOrder)
                    .put("background", background).put("taper_px", taperPx)
                    .put("fourier_view", fourierView).put("allow_failed_estimate", allowFailedEstimate)
                    .put("device", device).toString();
        }

        void remember() {
            Prefs.set(PREFIX + "na", na);
            Prefs.set(PREFIX + "wavelength", wavelengthNm);
            if (voxelFromDialog) {
                Prefs.set(PREFIX + "pixel_size", pixelSizeNm);
            }
            Prefs.set(PREFIX + "angles", angles);
            Prefs.set(PREFIX + "phases", phases);
            Prefs.set(PREFIX + "order", order);
            Prefs.set(PREFIX + "time_points", timePoints);
            Prefs.set(PREFIX + "per_plane", perPlane);
            Prefs.set(PREFIX + "wiener", wiener);
            Prefs.set(PREFIX + "apodization_cutoff", apodizationCutoff);
            Prefs.set(PREFIX + "apodization_bend", apodizationBend);
            Prefs.set(PREFIX + "otf_attenuation", otfAttenuation);
            Prefs.set(PREFIX + "zero_order_suppression", zeroOrder);
            Prefs.set(PREFIX + "otf", otfChoice);
            Prefs.set(PREFIX + "background", background);
            Prefs.set(PREFIX + "edge_taper", taperPx);
            Prefs.set(PREFIX + "widefield", widefield);
            Prefs.set(PREFIX + "wiener_widefield", wienerWidefield);
            Prefs.set(PREFIX + "fourier_view", fourier);
            Prefs.set(PREFIX + "results_table", table);
            Prefs.set(PREFIX + "allow_failed_estimate", allowFailedEstimate);
            Prefs.set(PREFIX + "device", device);
        }
    }
}
