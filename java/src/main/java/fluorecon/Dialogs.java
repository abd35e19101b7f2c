package fluorecon;

import ij.ImagePlus;
import ij.WindowManager;

import java.util.ArrayList;
import java.util.List;

/**
 * Dialog helpers shared by the menu commands: the open images a dialog offers as a choice,
 * looking a macro's choice up among a dialog's items, and the title of a result image.
 */
final class Dialogs {
    private Dialogs() {
    }

    /** @return the title without a file extension ("cells.ome.tif" → "cells"; "cells 1.5x" unchanged) */
    static String withoutExtension(String title) {
        return title.replaceFirst("(?i)(\\.ome)?\\.[a-z][a-z0-9]{0,4}$", "");
    }

    /** @return every open image but {@code imp}, in window order */
    static List<ImagePlus> otherImages(ImagePlus imp) {
        List<ImagePlus> images = new ArrayList<ImagePlus>();
        int[] ids = WindowManager.getIDList();
        if (ids != null) {
            for (int id : ids) {
                ImagePlus other = WindowManager.getImage(id);
                if (other != null && other.getID() != imp.getID()) {
                    images.add(other);
                }
            }
        }
        return images;
    }

    /** @return the index of {@code item} in {@code items}, or -1 */
    static int indexOf(String[] items, String item) {
        for (int i = 0; i < items.length; i++) {
            if (items[i].equals(item)) {
                return i;
            }
        }
        return -1;
    }
}
