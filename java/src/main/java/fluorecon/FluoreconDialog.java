package fluorecon;

import ij.IJ;
import ij.Macro;
import ij.gui.GenericDialog;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * The dialog of every Fluorecon command: a {@link GenericDialog} that remembers the macro key of
 * each field it adds (ImageJ's {@link Macro#trimKey} of the label) and, when a macro runs the
 * command, logs a warning naming every option the command does not know ({@code iteratons=3} is
 * otherwise silently ignored and the default runs). A warning, not an error: ImageJ ignores
 * unknown keys by convention, and old macros keep running.
 */
class FluoreconDialog extends GenericDialog {
    private static final long serialVersionUID = 1L;
    private final Set<String> keys = new LinkedHashSet<String>();

    FluoreconDialog(String title) {
        super(title);
    }

    private void key(String label) {
        keys.add(Macro.trimKey(label));
    }

    @Override
    public void addNumericField(String label, double defaultValue) {
        key(label);
        super.addNumericField(label, defaultValue);
    }

    @Override
    public void addNumericField(String label, double defaultValue, int digits) {
        key(label);
        super.addNumericField(label, defaultValue, digits);
    }

    @Override
    public void addNumericField(String label, double defaultValue, int digits, int columns, String units) {
        key(label);
        super.addNumericField(label, defaultValue, digits, columns, units);
    }

    @Override
    public void addStringField(String label, String defaultText) {
        key(label);
        super.addStringField(label, defaultText);
    }

    @Override
    public void addStringField(String label, String defaultText, int columns) {
        key(label);
        super.addStringField(label, defaultText, columns);
    }

    @Override
    public void addChoice(String label, String[] items, String defaultItem) {
        key(label);
        super.addChoice(label, items, defaultItem);
    }

    @Override
    public void addCheckbox(String label, boolean defaultValue) {
        key(label);
        super.addCheckbox(label, defaultValue);
    }

    @Override
    public void addDirectoryField(String label, String defaultPath) {
        key(label);
        super.addDirectoryField(label, defaultPath);
    }

    @Override
    public void addDirectoryField(String label, String defaultPath, int columns) {
        key(label);
        super.addDirectoryField(label, defaultPath, columns);
    }

    @Override
    public void addFileField(String label, String defaultPath) {
        key(label);
        super.addFileField(label, defaultPath);
    }

    @Override
    public void addFileField(String label, String defaultPath, int columns) {
        key(label);
        super.addFileField(label, defaultPath, columns);
    }

    @Override
    public void showDialog() {
        super.showDialog();
        String options = Macro.getOptions();
        if (options != null && !wasCanceled()) {
            for (String unknown : unknownKeys(options, keys)) {
                IJ.log("Warning: " + getTitle() + ": unknown option '" + unknown + "' is ignored (known: "
                        + String.join(", ", keys) + ")");
            }
        }
    }

    /** @return the keys of a macro options string ({@code key=value key=[a value] flag}) not in {@code known} */
    static List<String> unknownKeys(String options, Set<String> known) {
        List<String> unknown = new ArrayList<String>();
        int i = 0;
        int n = options.length();
        while (i < n) {
            while (i < n && options.charAt(i) == ' ') {
                i++;
            }
            int start = i;
            while (i < n && options.charAt(i) != '=' && options.charAt(i) != ' ') {
                i++;
            }
            String key = options.substring(start, i).toLowerCase(Locale.US);
            if (i < n && options.charAt(i) == '=') {
                i++;
                if (i < n && options.charAt(i) == '[') {
                    // The value ends at a ']' followed by a space or the end ("[[Model: x]]").
                    int close = options.indexOf(']', i);
                    while (close >= 0 && close + 1 < n && options.charAt(close + 1) != ' ') {
                        close = options.indexOf(']', close + 1);
                    }
                    i = close < 0 ? n : close + 1;
                } else {
                    while (i < n && options.charAt(i) != ' ') {
                        i++;
                    }
                }
            }
            if (!key.isEmpty() && !known.contains(key) && !unknown.contains(key)) {
                unknown.add(key);
            }
        }
        return unknown;
    }
}
