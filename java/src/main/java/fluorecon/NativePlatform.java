package fluorecon;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

/**
 * A platform the native engine is built for, as the plugin jar and Fiji name it: the jar carries
 * the library of each at {@code natives/<folder>/<libraryFile>} ({@code make release}); an
 * installed Fiji may hold one in {@code Fiji.app/lib/<fijiLib>/}.
 */
final class NativePlatform {
    /** Folder inside the jar's {@code natives/}: linux_64, linux_arm64, windows_64, macos_64, macos_arm64. */
    final String folder;
    /** The library's file name on this platform. */
    final String libraryFile;
    /** Fiji's folder for native libraries of this platform, under {@code Fiji.app/lib/}. */
    final String fijiLib;
    /** Words for messages: "Linux x86-64". */
    final String label;

    private NativePlatform(String folder, String libraryFile, String fijiLib, String label) {
        this.folder = folder;
        this.libraryFile = libraryFile;
        this.fijiLib = fijiLib;
        this.label = label;
    }

    /** Every platform the engine is built for. */
    static final List<NativePlatform> ALL = Collections.unmodifiableList(Arrays.asList(
            new NativePlatform("linux_64", "libfluorecon.so", "linux64", "Linux x86-64"),
            new NativePlatform("linux_arm64", "libfluorecon.so", "linux-arm64", "Linux arm64"),
            new NativePlatform("windows_64", "fluorecon.dll", "win64", "Windows x86-64"),
            new NativePlatform("macos_64", "libfluorecon.dylib", "macosx", "macOS Intel"),
            new NativePlatform("macos_arm64", "libfluorecon.dylib", "macos-arm64", "macOS Apple silicon")));

    /** @return the library's path inside the jar */
    String resource() {
        return "/natives/" + folder + "/" + libraryFile;
    }

    /** @return whether a CUDA build of the engine can exist here (Linux x86-64 only) */
    boolean hasCudaBuild() {
        return folder.equals("linux_64");
    }

    /**
     * @param osName the {@code os.name} system property ("Linux", "Windows 11", "Mac OS X")
     * @param osArch the {@code os.arch} system property ("amd64", "x86_64", "aarch64", "arm64")
     * @return the platform, or null when the engine is not built for it
     */
    static NativePlatform of(String osName, String osArch) {
        String os = osName == null ? "" : osName.toLowerCase(Locale.ROOT);
        String arch = osArch == null ? "" : osArch.toLowerCase(Locale.ROOT);
        boolean x64 = arch.equals("amd64") || arch.equals("x86_64");
        boolean arm64 = arch.equals("aarch64") || arch.equals("arm64");
        String folder = null;
        if (os.startsWith("linux")) {
            folder = x64 ? "linux_64" : arm64 ? "linux_arm64" : null;
        } else if (os.startsWith("windows")) {
            folder = x64 ? "windows_64" : null;
        } else if (os.startsWith("mac") || os.startsWith("darwin")) {
            folder = x64 ? "macos_64" : arm64 ? "macos_arm64" : null;
        }
        for (NativePlatform p : ALL) {
            if (p.folder.equals(folder)) {
                return p;
            }
        }
        return null;
    }

    /** @return the platform this JVM runs on, or null when the engine is not built for it */
    static NativePlatform current() {
        return of(System.getProperty("os.name"), System.getProperty("os.arch"));
    }

    /** @return the message for a platform the engine is not built for, naming it and the ones it is */
    static String unsupportedMessage(String osName, String osArch) {
        StringBuilder built = new StringBuilder();
        for (NativePlatform p : ALL) {
            built.append(built.length() == 0 ? "" : ", ").append(p.label);
        }
        return "Fluorecon's native engine is not built for this computer (" + osName + ", " + osArch
                + "); it runs on " + built + ".";
    }
}
