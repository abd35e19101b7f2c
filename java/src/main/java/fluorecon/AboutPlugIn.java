package fluorecon;

import ij.IJ;

/**
 * Plugins › Fluorecon › About Fluorecon…: plugin and engine versions, the native library's path,
 * and the engine's build features and devices. Shown in a message window, or written to the log
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
                .append("\nLibrary: ").append(NativeLoader.loadedPath());
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
}
