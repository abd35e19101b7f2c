package fluorecon;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;
import static org.junit.Assume.assumeTrue;

import java.io.File;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import org.junit.Test;

public class NativeLoaderTest {
    @Test
    public void missingExplicitPathIsReportedNotReplaced() {
        String path = new File("/nonexistent/fluorecon/libfluorecon.so").getAbsolutePath();
        try {
            NativeLoader.loadFirst(path, null, cpu(), new ArrayList<String>());
            fail("a missing library was loaded");
        } catch (FluoreconException e) {
            String message = e.getMessage();
            assertTrue(message, message.contains(NativeLoader.PROPERTY));
            assertTrue(message, message.contains(path));
            assertTrue(message, message.contains("no such file exists"));
        }
    }

    @Test
    public void everyDesktopPlatformHasItsLibrary() {
        String[][] cases = {
            {"Linux", "amd64", "/natives/linux_64/libfluorecon.so", "linux64"},
            {"Linux", "x86_64", "/natives/linux_64/libfluorecon.so", "linux64"},
            {"Linux", "aarch64", "/natives/linux_arm64/libfluorecon.so", "linux-arm64"},
            {"Windows 11", "amd64", "/natives/windows_64/fluorecon.dll", "win64"},
            {"Windows 10", "amd64", "/natives/windows_64/fluorecon.dll", "win64"},
            {"Mac OS X", "x86_64", "/natives/macos_64/libfluorecon.dylib", "macosx"},
            {"Mac OS X", "aarch64", "/natives/macos_arm64/libfluorecon.dylib", "macos-arm64"},
        };
        for (String[] c : cases) {
            NativePlatform p = NativePlatform.of(c[0], c[1]);
            assertEquals(c[0] + " " + c[1], c[2], p.resource());
            assertEquals(c[3], p.fijiLib);
            assertNull(NativeLoader.unsupportedPlatform(c[0], c[1]));
            assertEquals(c[2].startsWith("/natives/linux_64/"), p.hasCudaBuild());
        }
        for (String[] c : new String[][] {{"Windows 11", "aarch64"}, {"Linux", "ppc64le"}, {"FreeBSD", "amd64"},
            {"Linux", "x86"}}) {
            assertNull(NativePlatform.of(c[0], c[1]));
            String message = NativeLoader.unsupportedPlatform(c[0], c[1]);
            assertTrue(message, message.contains("(" + c[0] + ", " + c[1] + ")"));
            assertTrue(message, message.contains("it runs on Linux x86-64, Linux arm64, Windows x86-64, macOS Intel, "
                    + "macOS Apple silicon."));
        }
    }

    /** The CUDA build exists for Linux x86-64 only: elsewhere the reason says so, and no CUDA load is tried. */
    @Test
    public void cudaIsOfferedOnLinuxX86_64Only() {
        assumeTrue(NativeLoader.PLATFORM != null);
        NativeLoader.Decision d = NativeLoader.decide("cuda", false, new java.util.ArrayList<File>(),
                new java.util.ArrayList<File>(), f -> true);
        assertTrue(!d.tryCuda && d.reasons.size() == 1);
        String expected = NativeLoader.PLATFORM.hasCudaBuild() ? "the jar was built without a CUDA toolchain"
                : "exists for Linux x86-64 only";
        assertTrue(d.reasons.get(0), d.reasons.get(0).contains(expected));
    }

    /** Surefire sets the property to ../target/release/libfluorecon.so; skipped until cargo built it. */
    @Test
    public void loadsTheLibraryNamedBySystemProperty() throws FluoreconException {
        String path = System.getProperty(NativeLoader.PROPERTY);
        assumeTrue("no native library at " + path, path != null && new File(path).isFile());
        Native.ensureLoaded();
        assertEquals(new File(path).getAbsolutePath(), NativeLoader.loadedPath());
        assertTrue(NativeLoader.fallbackReasons().isEmpty());
        Native.ensureLoaded(); // a second call is a no-op
        assertEquals(new File(path).getAbsolutePath(), NativeLoader.loadedPath());
    }

    /** The jar's copy (here the class path's) is loaded from a temporary file that is then deleted. */
    @Test
    public void loadsTheCopyInsideThePluginAndLeavesNoTemporaryFile() throws FluoreconException {
        assumeTrue("no library among the resources",
                NativeLoader.class.getResource(NativeLoader.RESOURCE) != null);
        assumeTrue(NativeLoader.unsupportedPlatform(System.getProperty("os.name"),
                System.getProperty("os.arch")) == null);
        Set<String> before = temporaryFolders();
        List<String> reasons = new ArrayList<String>();
        String loaded = NativeLoader.loadFirst(null, "/nonexistent-imagej", cpu(), reasons);
        assertTrue(loaded, loaded.endsWith(NativeLoader.RESOURCE));
        assertEquals(Arrays.asList("/nonexistent-imagej/lib/linux64/libfluorecon.so: no such file exists"),
                reasons);
        Set<String> added = temporaryFolders();
        added.removeAll(before);
        assertTrue("left behind: " + added, added.isEmpty());
    }

    /**
     * A truncated libfluorecon.so in Fiji.app/lib/linux64 once crashed the JVM (SIGBUS while
     * loading): it is now recognised before System.load, and the jar's copy is loaded instead.
     */
    @Test
    public void truncatedInstalledLibraryFallsBackToTheJarsCopy() throws Exception {
        String path = System.getProperty(NativeLoader.PROPERTY);
        assumeTrue("no native library at " + path, path != null && new File(path).isFile());
        byte[] whole = java.nio.file.Files.readAllBytes(new File(path).toPath());
        assertNull(NativeLoader.elfProblem(new File(path)));
        assertNull(NativeLoader.libraryProblem(new File(path)));
        // The same check on Linux arm64 refuses an x86-64 library, naming the architecture.
        assertEquals("it is not a 64-bit Linux arm64 library", NativeLoader.elfProblem(new File(path), 183));
        File imagej = java.nio.file.Files.createTempDirectory("fluorecon-test-imagej").toFile();
        File lib = new File(new File(imagej, "lib"), "linux64");
        assertTrue(lib.mkdirs());
        File installed = new File(lib, NativeLoader.FILE_NAME);
        try {
            for (int keep : new int[] { whole.length / 2, whole.length - 1, 4096, 100, 10 }) {
                java.nio.file.Files.write(installed.toPath(), Arrays.copyOf(whole, keep));
                String problem = NativeLoader.elfProblem(installed);
                assertTrue(keep + ": " + problem, problem != null
                        && (problem.contains("truncated") || problem.contains("not a library")));
            }
            java.nio.file.Files.write(installed.toPath(), ("#!/bin/sh\n# a script saved under the library's name, longer than an ELF header\n"
                    + "echo not a library\n").getBytes("UTF-8"));
            assertTrue(NativeLoader.elfProblem(installed).contains("no ELF header"));
            java.nio.file.Files.write(installed.toPath(), Arrays.copyOf(whole, whole.length / 2));
            assumeTrue("no library among the resources",
                    NativeLoader.class.getResource(NativeLoader.RESOURCE) != null);
            List<String> reasons = new ArrayList<String>();
            String loaded = NativeLoader.loadFirst(null, imagej.getPath(), cpu(), reasons);
            assertTrue(loaded, loaded.endsWith(NativeLoader.RESOURCE));
            assertEquals(1, reasons.size());
            assertTrue(reasons.get(0), reasons.get(0).startsWith(installed.getPath() + ": the file is truncated"));
        } finally {
            installed.delete();
            lib.delete();
            lib.getParentFile().delete();
            imagej.delete();
        }
    }

    /** -Dfluorecon.library naming a folder says so (it once said "no such file"). */
    @Test
    public void folderNamedAsLibraryIsReportedAsAFolder() {
        String tmp = System.getProperty("java.io.tmpdir");
        try {
            NativeLoader.loadFirst(tmp, null, cpu(), new ArrayList<String>());
            fail("a folder was loaded");
        } catch (FluoreconException e) {
            assertTrue(e.getMessage(), e.getMessage().contains("it is a folder"));
        }
    }

    static NativeLoader.Decision cpu() {
        return NativeLoader.decide("cpu", false, Collections.<File>emptyList(), Collections.<File>emptyList(),
                f -> false);
    }

    private static Set<String> temporaryFolders() {
        Set<String> names = new HashSet<String>();
        String[] all = new File(System.getProperty("java.io.tmpdir")).list();
        for (String name : all == null ? new String[0] : all) {
            if (name.matches("fluorecon-\\d+")) {
                names.add(name);
            }
        }
        return names;
    }
}
