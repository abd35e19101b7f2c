package fluorecon;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

/**
 * Finds and loads the native engine {@code libfluorecon.so}, once per JVM. Looks, in order:
 * <ol>
 * <li>at the path in the system property {@value #PROPERTY}. When it is set, it is the only place
 * tried: a wrong path is reported instead of silently loading another copy;</li>
 * <li>in {@code <ImageJ>/lib/linux64/} (an installed Fiji), when ImageJ is present;</li>
 * <li>in the plugin jar at {@value #RESOURCE}, copied into a per-process temporary folder. The copy
 * is deleted as soon as it is loaded (Linux keeps a loaded library mapped), so that a killed JVM
 * leaves nothing behind; failing that, when the JVM exits.</li>
 * </ol>
 * The reason each place was passed over is kept for {@link #fallbackReasons()}.
 */
final class NativeLoader {
    /** System property naming the library file to load; overrides every other place. */
    static final String PROPERTY = "fluorecon.library";
    /** Where the library sits inside the plugin jar. */
    static final String RESOURCE = "/natives/linux_64/libfluorecon.so";
    static final String FILE_NAME = "libfluorecon.so";

    private static String loadedPath;
    private static final List<String> fallbackReasons = new ArrayList<String>();

    private NativeLoader() {
    }

    /**
     * Loads the library unless already loaded.
     *
     * @return where the library came from (see {@link #loadedPath()})
     * @throws FluoreconException listing why every place failed
     */
    static synchronized String ensureLoaded() throws FluoreconException {
        if (loadedPath == null) {
            List<String> reasons = new ArrayList<String>();
            loadedPath = loadFirst(System.getProperty(PROPERTY), imageJDirectory(), reasons);
            fallbackReasons.addAll(reasons);
        }
        return loadedPath;
    }

    /**
     * @return where the loaded library came from: its absolute path, or for the copy from the jar
     *         the jar URL ({@code jar:file:…/Fluorecon_-0.1.0.jar!/natives/linux_64/libfluorecon.so});
     *         null when not loaded (yet)
     */
    static synchronized String loadedPath() {
        return loadedPath;
    }

    /** @return why places tried before the loaded one were passed over (empty when the first worked) */
    static synchronized List<String> fallbackReasons() {
        return Collections.unmodifiableList(new ArrayList<String>(fallbackReasons));
    }

    /**
     * Loads the library from the first place that works. Package-private for tests.
     *
     * @param explicitPath the value of {@value #PROPERTY}, or null
     * @param imageJDir    the ImageJ/Fiji folder, or null when ImageJ is absent
     * @param reasons      receives one line per place passed over
     * @return where the library came from (see {@link #loadedPath()})
     */
    static String loadFirst(String explicitPath, String imageJDir, List<String> reasons)
            throws FluoreconException {
        if (explicitPath != null && !explicitPath.trim().isEmpty()) {
            File file = new File(explicitPath.trim());
            String problem = tryLoad(file);
            if (problem != null) {
                throw new FluoreconException("The system property " + PROPERTY + " names "
                        + file.getAbsolutePath() + ", but " + problem
                        + ". Fix the path or remove the property to use the library inside the plugin.");
            }
            return file.getAbsolutePath();
        }
        String platformProblem = unsupportedPlatform(System.getProperty("os.name"), System.getProperty("os.arch"));
        if (platformProblem != null) {
            throw new FluoreconException(platformProblem);
        }
        if (imageJDir != null) {
            File installed = new File(new File(new File(imageJDir, "lib"), "linux64"), FILE_NAME);
            String problem = tryLoad(installed);
            if (problem == null) {
                return installed.getAbsolutePath();
            }
            reasons.add(installed.getPath() + ": " + problem);
        }
        File extracted;
        try {
            extracted = extractFromJar();
        } catch (IOException e) {
            reasons.add("plugin jar: " + e.getMessage());
            throw notFound(reasons);
        }
        String problem = tryLoad(extracted);
        if (extracted.delete()) {
            extracted.getParentFile().delete();
        }
        if (problem != null) {
            reasons.add("plugin jar: " + problem);
            throw notFound(reasons);
        }
        return String.valueOf(NativeLoader.class.getResource(RESOURCE));
    }

    /** @return null on Linux x86-64, the only platform the engine is built for, else a message */
    static String unsupportedPlatform(String os, String arch) {
        String a = arch == null ? "" : arch.toLowerCase(Locale.ROOT);
        boolean linux = os != null && os.toLowerCase(Locale.ROOT).startsWith("linux");
        if (linux && (a.equals("amd64") || a.equals("x86_64"))) {
            return null;
        }
        return "Fluorecon's native engine is built for Linux x86-64; this is " + os + "/" + arch + ".";
    }

    /** @return null when loaded, else why not (for a sentence "…, but &lt;why&gt;") */
    private static String tryLoad(File file) {
        if (!file.isFile()) {
            return "no such file exists";
        }
        try {
            System.load(file.getAbsolutePath());
            return null;
        } catch (UnsatisfiedLinkError e) {
            return "it could not be loaded (" + e.getMessage() + ")";
        } catch (SecurityException e) {
            return "loading it was not permitted (" + e.getMessage() + ")";
        }
    }

    /** Copies the library out of the jar into a fresh temporary folder, both to be deleted on exit. */
    private static File extractFromJar() throws IOException {
        InputStream in = NativeLoader.class.getResourceAsStream(RESOURCE);
        if (in == null) {
            throw new IOException("it does not contain " + RESOURCE.substring(1)
                    + " (was it built before `cargo build --release`?)");
        }
        try {
            File dir = Files.createTempDirectory("fluorecon-").toFile();
            dir.deleteOnExit();
            File file = new File(dir, FILE_NAME);
            file.deleteOnExit(); // runs before the folder's: deleteOnExit works in reverse order
            Files.copy(in, file.toPath(), StandardCopyOption.REPLACE_EXISTING);
            return file;
        } finally {
            in.close();
        }
    }

    private static FluoreconException notFound(List<String> reasons) {
        StringBuilder message = new StringBuilder("Fluorecon's native engine (" + FILE_NAME
                + ") could not be loaded. Reinstall the plugin, or set the system property "
                + PROPERTY + " to the library's path. Tried:");
        for (String reason : reasons) {
            message.append("\n  ").append(reason);
        }
        return new FluoreconException(message.toString());
    }

    /** @return the ImageJ folder, or null when ImageJ is absent or does not know it */
    private static String imageJDirectory() {
        try {
            return ImageJDirectory.get();
        } catch (LinkageError e) { // ImageJ is not on the class path
            return null;
        }
    }

    /** Touches ImageJ classes only when called, so that the loader works without ImageJ. */
    private static final class ImageJDirectory {
        static String get() {
            return ij.IJ.getDirectory("imagej");
        }
    }
}
