package fluorecon;

/**
 * Receives progress from a native computation and tells it when to stop. The Rust engine calls
 * these methods from the thread that called into {@link Native}, at least once per iteration, so
 * implementations must be cheap and must not block.
 */
public interface ProgressListener {
    /** @param f fraction of this native call done, 0.0–1.0 */
    void fraction(double f);

    /** @param message a short status line, e.g. "RL iteration 12/40" */
    void status(String message);

    /** @param message a line for the log: the device used, warnings such as a cropped PSF */
    void log(String message);

    /** @return true once the user asked to stop; the engine then throws {@link CancelledException} */
    boolean cancelled();
}
