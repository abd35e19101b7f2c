package fluorecon;

import ij.IJ;

/**
 * Plugins › Fluorecon › About Fluorecon…: plugin and engine versions, the native library's path,
 * the library flavour (cpu or cuda) and why the GPU was not used, and the engine's build features,
 * devices and driver. Shown in a message window, or written to the log
 * when there is no ImageJ window ({@code -batch}, headless).
 */
public class AboutPlugIn extends FluoreconCommand {
    @Override
    void execute() throws FluoreconException {
        String pluginVersion = AboutPlugIn.class.getPackage().getImplementationVersion();
        StringBuilder text = new StringBuilder();
        text.append("Fluorecon plugin ").append(pluginVersion == null ? "(development build)" : pluginVersion);
        try {
            Native.ensureLoaded();
        } catch (FluoreconException e) {
            throw new FluoreconException(text + "\n\nThe native engine is not available:\n" + e.getMessage(), e);
        }
        text.append("\nEngine ").append(Native.version())
                .append("\nLibrary: ").append(NativeLoader.loadedPath())
                .append("\nLibrary flavour: ").append(NativeLoader.loadedFlavour())
                .append(" (device requested: ").append(describe(NativeLoader.requestedDevice()))
                .append("; set with -D").append(NativeLoader.DEVICE_PROPERTY).append("=auto|cpu|cuda)");
        for (String reason : NativeLoader.fallbackReasons()) {
            text.append("\n  (not used: ").append(reason).append(')');
        }
        text.append("\n\n").append(Native.info().trim());
        if (IJ.getInstance() == null) {
            IJ.log(text.toString());
        } else {
            IJ.showMessage("About Fluorecon", text.toString());
        }
    }

    /** @return "auto", "cpu" or "cuda" (the requested device); "auto" before loading */
    static String describe(NativeLoader.Request request) {
        return request == null ? "auto" : request.name().toLowerCase(java.util.Locale.ROOT);
    }
}
