package fluorecon;

/**
 * The user cancelled (Esc): the computation stopped and produced nothing. Not an error, so the
 * commands show a status line instead of an error dialog.
 */
public class CancelledException extends FluoreconException {
    private static final long serialVersionUID = 1L;

    /** @param message a short note such as "cancelled by the user" */
    public CancelledException(String message) {
        super(message);
    }
}
