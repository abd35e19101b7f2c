package fluorecon;

import ij.IJ;
import ij.Macro;
import ij.macro.Interpreter;
import ij.plugin.PlugIn;

/**
 * Base of every Fluorecon menu command: runs {@link #execute()} and turns every failure into a
 * message for the user, never a stack trace alone.
 * <ul>
 * <li>{@link CancelledException}: a status line, no result, no dialog.</li>
 * <li>{@link FluoreconException} and anything unexpected: an error dialog, or, when there is no
 * ImageJ window (the {@code -batch} command line, headless Fiji), a line "Fluorecon error: …" in
 * the log, which then goes to standard output. A running macro is aborted.</li>
 * </ul>
 */
abstract class FluoreconCommand implements PlugIn {
    /** Title of error dialogs. */
    static final String TITLE = "Fluorecon";

    /** Does the command's work; called once per menu or {@code run(…)} call. */
    abstract void execute() throws FluoreconException;

    @Override
    public final void run(String arg) {
        try {
            execute();
        } catch (CancelledException e) {
            IJ.showProgress(1.0);
            IJ.showStatus("Fluorecon: cancelled");
        } catch (FluoreconException e) {
            reportError(e.getMessage());
        } catch (UnsatisfiedLinkError e) {
            reportError("The native engine does not match this plugin (" + e.getMessage()
                    + "). Install the plugin jar and the native library from the same release.");
        } catch (OutOfMemoryError e) {
            reportError("Java ran out of memory. Give ImageJ more (Edit › Options › Memory & Threads…)"
                    + " or process a smaller image.");
        } catch (Throwable e) { // a bug: say so, and keep the details for the report
            e.printStackTrace();
            reportError("Unexpected error: " + e + " (details on the console; please report it)");
        }
    }

    /**
     * Shows an error and aborts a running macro. ImageJ's {@code IJ.error} opens a modal dialog
     * even in {@code -batch} mode when a display exists (for example under xvfb), where nobody can
     * close it and the macro hangs; without an ImageJ window the message is therefore logged.
     */
    static void reportError(String message) {
        IJ.showProgress(1.0);
        if (IJ.getInstance() == null) {
            IJ.log("Fluorecon error: " + message);
        } else {
            IJ.error(TITLE, message);
        }
        if (IJ.isMacro()) {
            Interpreter.abort(); // Macro.abort() only stops macros running in a "…Macro$" thread
        }
    }

    /** @return {@code value} as an int when it is a whole number of at least 1 */
    static int atLeastOne(double value, String what) throws FluoreconException {
        if (value >= 1 && value <= Integer.MAX_VALUE && value == Math.rint(value)) {
            return (int) value;
        }
        boolean whole = value == Math.rint(value) && !Double.isInfinite(value);
        String shown = whole ? Long.toString((long) value) : Double.toString(value);
        throw new FluoreconException(what + " must be a whole number of at least 1; it is " + shown + ".");
    }

    /** @throws FluoreconException unless {@code nm} is a positive length */
    static void checkPositiveNm(double nm, String what) throws FluoreconException {
        if (!(nm > 0)) {
            throw new FluoreconException(what + " must be a positive number of nm; it is " + nm + ".");
        }
    }

    /**
     * @return how many decimals a dialog field needs to show {@code value} without rounding it to
     *         0: at least {@code min}, at most 9 (GenericDialog would show 1e-5 as "0.0000")
     */
    static int decimals(double value, int min) {
        if (value == 0 || Double.isNaN(value) || Double.isInfinite(value)) {
            return min;
        }
        int needed = (int) Math.ceil(-Math.log10(Math.abs(value))) + 2;
        return Math.max(min, Math.min(9, needed));
    }

    /** @return true when a macro supplied this command's options: unnamed options take their defaults */
    static boolean calledWithOptions() {
        return Macro.getOptions() != null;
    }
}
