package fluorecon;

import ij.measure.ResultsTable;

/** Localizations as an ImageJ ResultsTable with ThunderSTORM's column names and units. */
final class Localizations {
    /** Title of the table the commands write and read by default. */
    static final String TABLE = "Localizations";
    static final String[] COLUMNS = {"frame", "x [nm]", "y [nm]", "sigma [nm]", "intensity [photon]",
        "offset [photon]", "bkgstd [photon]", "uncertainty [nm]"};

    private Localizations() {
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
