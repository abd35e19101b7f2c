package fluorecon;

import java.util.Locale;

/**
 * The options of one native call, written as the JSON object the engine reads: keys in the engine's
 * words ({@code iterations}, {@code tv_lambda}, {@code voxel_nm}, …), built from a dialog's values. The
 * engine refuses a missing or unknown key with a message naming it, so a key misspelt here fails at
 * once instead of silently taking a default.
 */
final class NativeOptions {
    private final StringBuilder json = new StringBuilder("{");

    NativeOptions put(String key, double value) {
        // JSON has no NaN or infinity: the engine reports the null as a missing number.
        return raw(key, Double.isNaN(value) || Double.isInfinite(value) ? "null" : Double.toString(value));
    }

    NativeOptions put(String key, int value) {
        return raw(key, Integer.toString(value));
    }

    NativeOptions put(String key, boolean value) {
        return raw(key, Boolean.toString(value));
    }

    /** A string, or null. */
    NativeOptions put(String key, String value) {
        return raw(key, value == null ? "null" : quote(value));
    }

    /** An array of numbers, e.g. a voxel size {x, y, z}. */
    NativeOptions put(String key, double[] values) {
        StringBuilder a = new StringBuilder("[");
        for (int i = 0; i < values.length; i++) {
            a.append(i == 0 ? "" : ",").append(Double.toString(values[i]));
        }
        return raw(key, a.append(']').toString());
    }

    /** A nested object. */
    NativeOptions put(String key, NativeOptions value) {
        return raw(key, value.toString());
    }

    private NativeOptions raw(String key, String value) {
        json.append(json.length() == 1 ? "" : ",").append(quote(key)).append(':').append(value);
        return this;
    }

    private static String quote(String s) {
        StringBuilder q = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '"' || c == '\\') {
                q.append('\\').append(c);
            } else if (c < 0x20) {
                q.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
            } else {
                q.append(c);
            }
        }
        return q.append('"').toString();
    }

    /** @return the JSON object */
    @Override
    public String toString() {
        return json + "}";
    }
}
