package fluorecon;

import ij.Prefs;
import ij.gui.GenericDialog;

/**
 * The {@code device} choice of every compute command's dialog: {@code auto} (the GPU when the CUDA
 * library is loaded and a GPU is usable, else the CPU), {@code cpu} or {@code cuda}. The engine logs
 * the device that ran and, when CUDA was asked for but cannot be used, why; it then runs on the CPU.
 * Interactive dialogs start from the last choice (an ImageJ preference per command); macros from
 * {@code auto}, and {@code device=cuda} in a macro's options selects CUDA.
 */
final class Devices {
    /** The choices, the default first. */
    static final String[] CHOICES = {"auto", "cpu", "cuda"};
    /** Label of the dialog field; its macro key is {@code device}. */
    static final String LABEL = "Device";

    private Devices() {
    }

    /** @return the choice remembered under {@code prefsKey}, or {@code auto} when none (or an unknown one) is */
    static String remembered(String prefsKey) {
        String d = Prefs.get(prefsKey, CHOICES[0]);
        return Dialogs.indexOf(CHOICES, d) < 0 ? CHOICES[0] : d;
    }

    /** Adds the choice, starting from the remembered one (from {@code auto} when a macro runs the command). */
    static void addChoice(GenericDialog gd, String prefsKey, boolean macro) {
        gd.addChoice(LABEL, CHOICES, macro ? CHOICES[0] : remembered(prefsKey));
    }

    /**
     * Reads the choice added by {@link #addChoice} (fields are read in order), checks it, and
     * remembers it unless a macro runs the command.
     */
    static String read(GenericDialog gd, String prefsKey, boolean macro) throws FluoreconException {
        String device = check(gd.getNextChoice());
        if (!macro) {
            Prefs.set(prefsKey, device);
        }
        return device;
    }

    /**
     * @return {@code device} when it is one of {@link #CHOICES} (GenericDialog passes a macro's unknown
     *         choice on as it is)
     */
    static String check(String device) throws FluoreconException {
        if (Dialogs.indexOf(CHOICES, device) < 0) {
            throw new FluoreconException("Unknown device \"" + device + "\": use auto, cpu or cuda.");
        }
        return device;
    }
}
