package fluorecon;

import ij.IJ;

import java.util.HashSet;
import java.util.Locale;
import java.util.Set;

/**
 * Shows engine progress in ImageJ: the progress bar ({@code IJ.showProgress}), the status line,
 * the Log window, and Esc to cancel. A command that calls the engine once per (channel, frame)
 * announces each call with {@link #startPart}, so that the bar runs once over the whole job.
 */
final class JavaProgress implements ProgressListener {
    private final Set<String> logged = new HashSet<String>();
    private int part;
    private int parts = 1;

    /** Starts a command: forgets an Esc pressed before it. */
    JavaProgress() {
        IJ.resetEscape();
    }

    /**
     * Announces the next native call.
     *
     * @param part  0-based index of the call
     * @param parts number of calls in the whole job
     */
    void startPart(int part, int parts) {
        this.part = part;
        this.parts = Math.max(1, parts);
    }

    /** Hides the progress bar. */
    void done() {
        IJ.showProgress(1.0);
    }

    @Override
    public void fraction(double f) {
        double clamped = Math.max(0, Math.min(1, f));
        IJ.showProgress((part + clamped) / parts);
    }

    @Override
    public void status(String message) {
        IJ.showStatus(parts > 1 ? String.format(Locale.ROOT, "(%d/%d) %s", part + 1, parts, message) : message);
    }

    /** Logs each distinct line once per command, so a hyperstack does not repeat "device: cpu" per part. */
    @Override
    public void log(String message) {
        if (logged.add(message)) {
            IJ.log(message);
        }
    }

    @Override
    public boolean cancelled() {
        return IJ.escapePressed();
    }
}
