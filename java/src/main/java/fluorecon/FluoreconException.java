package fluorecon;

/**
 * A failure whose message is written for the person at the microscope: it says what is wrong
 * with the input or the installation and what to do about it. Thrown by the native engine (every
 * Rust error and panic becomes one) and by the Java checks that run before it.
 */
public class FluoreconException extends Exception {
    private static final long serialVersionUID = 1L;

    /** @param message what went wrong and what to do, in the user's words */
    public FluoreconException(String message) {
        super(message);
    }

    /**
     * @param message what went wrong and what to do, in the user's words
     * @param cause   the underlying failure, kept for debugging
     */
    public FluoreconException(String message, Throwable cause) {
        super(message, cause);
    }
}
