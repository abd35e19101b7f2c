package fluorecon;

import java.util.ArrayList;
import java.util.List;

/** A listener that keeps the engine's log lines, for tests of what a command reports. */
class LogRecorder implements ProgressListener {
    final List<String> lines = new ArrayList<String>();

    @Override
    public void fraction(double f) {
    }

    @Override
    public void status(String message) {
    }

    @Override
    public void log(String message) {
        lines.add(message);
    }

    @Override
    public boolean cancelled() {
        return false;
    }

    /** @return true when a line starts with {@code prefix} */
    boolean has(String prefix) {
        for (String l : lines) {
            if (l.startsWith(prefix)) {
                return true;
            }
        }
        return false;
    }

    /** @return true when a line contains {@code text} */
    boolean mentions(String text) {
        for (String l : lines) {
            if (l.contains(text)) {
                return true;
            }
        }
        return false;
    }
}
