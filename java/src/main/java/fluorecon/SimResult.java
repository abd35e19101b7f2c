package fluorecon;

/**
 * What {@link Native#simReconstruct} gives for one channel. Images are planes × 2ny × 2nx floats,
 * time slowest, x fastest.
 */
final class SimResult {
    /** Values per pattern direction in {@link #parameters}. */
    static final int PARAM_FIELDS = 11;

    /** The SIM reconstruction. */
    final float[] sim;
    /** The widefield sum of each plane's frames, on the 2× grid. */
    final float[] widefield;
    /** The widefield image through the same Wiener filter, on the 2× grid. */
    final float[] wienerWidefield;
    /**
     * {@link #PARAM_FIELDS} values per direction: k0 x, k0 y [px], k0 x, k0 y [1/µm], direction [deg],
     * line spacing [nm], phase [rad], modulation, modulation used, peak ratio, flags (1 no stripes, 2 low
     * modulation, 4 implausible k0, 8 uneven angles, 16 inconsistent k0); first the reference estimate, then one set per output
     * plane.
     */
    final double[] parameters;
    /** 2ny × 2nx, log10(1 + |FFT|) of the reference plane, zero frequency at (nx, ny); null unless asked for. */
    final float[] fourierView;
    /** z planes per time point. */
    final int planes;

    /** Called by the engine. */
    SimResult(float[] sim, float[] widefield, float[] wienerWidefield, double[] parameters, float[] fourierView,
            int planes) {
        this.sim = sim;
        this.widefield = widefield;
        this.wienerWidefield = wienerWidefield;
        this.parameters = parameters;
        this.fourierView = fourierView;
        this.planes = planes;
    }
}
