package fluorecon;

import ij.IJ;

/**
 * Plugins › Fluorecon › Tools › About Fluorecon…: plugin and engine versions, licence, citation and
 * project URL, the platform libraries this jar carries, the native library's path,
 * the library flavour (cpu or cuda) and why the GPU was not used, and the engine's build features,
 * devices and driver. Shown in a message window, or written to the log
 * when there is no ImageJ window ({@code -batch}, headless).
 */
public class AboutPlugIn extends FluoreconCommand {
    /** The licence of the plugin and the engine (LICENSE, Cargo.toml). */
    static final String LICENCE = "BSD 2-Clause";
    /** Where the project lives: source, releases, issues. */
    static final String PROJECT_URL = "https://github.com/fluorecon/fluorecon";

    @Override
    void execute() throws FluoreconException {
        String pluginVersion = AboutPlugIn.class.getPackage().getImplementationVersion();
        StringBuilder text = new StringBuilder();
        text.append("Fluorecon plugin ").append(pluginVersion == null ? "(development build)" : pluginVersion)
                .append("\nLicence: ").append(LICENCE).append(" (see LICENSE); ").append(PROJECT_URL)
                .append("\n").append(citation(pluginVersion))
                .append("\n").append(platformLibraries());
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

    /** @return how to cite Fluorecon and the methods it runs */
    static String citation(String version) {
        return "Citation: Fluorecon " + (version == null ? "" : version + " ") + "(" + PROJECT_URL
                + "), and the paper of each method you used (listed in the README, e.g. Noise2Void: Krull et al., "
                + "CVPR 2019; CARE: Weigert et al., Nat. Methods 2018; Deep-STORM: Nehme et al., Optica 2018).";
    }

    /** @return the platform libraries inside this jar, e.g. "Platform libraries in this jar: linux_64, windows_64" */
    static String platformLibraries() {
        StringBuilder found = new StringBuilder();
        for (NativePlatform p : NativePlatform.ALL) {
            if (AboutPlugIn.class.getResource(p.resource()) != null) {
                found.append(found.length() == 0 ? "" : ", ").append(p.folder);
            }
        }
        if (AboutPlugIn.class.getResource(NativeLoader.CUDA_RESOURCE) != null) {
            found.append(found.length() == 0 ? "" : ", ").append("linux_64 CUDA");
        }
        NativePlatform here = NativeLoader.PLATFORM;
        return "Platform libraries in this jar: " + (found.length() == 0 ? "none" : found.toString())
                + " (this computer: " + (here == null ? System.getProperty("os.name") + " "
                        + System.getProperty("os.arch") + ", not supported" : here.folder) + ")";
    }

    /** @return "auto", "cpu" or "cuda" (the requested device); "auto" before loading */
    static String describe(NativeLoader.Request request) {
        return request == null ? "auto" : request.name().toLowerCase(java.util.Locale.ROOT);
    }
}
