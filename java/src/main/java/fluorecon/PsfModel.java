package fluorecon;

/** The PSF models the engine computes ({@code src/psf.rs}). */
enum PsfModel {
    /** Scalar Born &amp; Wolf diffraction model of a widefield microscope. */
    BORN_WOLF("Born & Wolf", "born-wolf", "BW"),
    /** 3D Gaussian approximation of the widefield PSF. */
    GAUSSIAN("Gaussian", "gaussian", "GA");

    /** Shown in dialogs and written in macros. */
    final String label;
    /** The model name the engine takes. */
    final String engineName;
    /** Short form used in image titles. */
    final String abbreviation;

    PsfModel(String label, String engineName, String abbreviation) {
        this.label = label;
        this.engineName = engineName;
        this.abbreviation = abbreviation;
    }

    static String[] labels() {
        PsfModel[] models = values();
        String[] labels = new String[models.length];
        for (int i = 0; i < models.length; i++) {
            labels[i] = models[i].label;
        }
        return labels;
    }

    /** @return the model with this dialog label, or null */
    static PsfModel fromLabel(String label) {
        for (PsfModel model : values()) {
            if (model.label.equals(label)) {
                return model;
            }
        }
        return null;
    }
}
