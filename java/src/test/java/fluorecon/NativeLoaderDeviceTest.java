package fluorecon;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertFalse;
import static org.junit.Assert.assertTrue;
import static org.junit.Assume.assumeTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.Test;

/** The choice between the CPU and the CUDA library ({@link NativeLoader#decide}) and its fallbacks. */
public class NativeLoaderDeviceTest {
    private static final File DRIVER_DIR = new File("/usr/lib/x86_64-linux-gnu");
    private static final File CUDA_DIR = new File("/opt/cuda13/lib");
    private static final File FIJI_DIR = new File("/opt/Fiji.app/lib/linux64");
    private static final List<File> DRIVER_DIRS = Arrays.asList(DRIVER_DIR, new File("/usr/lib64"));
    private static final List<File> RUNTIME_DIRS = Arrays.asList(DRIVER_DIR, CUDA_DIR, FIJI_DIR);

    /** A file system holding exactly these files. */
    private static Set<File> files(File... files) {
        return new HashSet<File>(Arrays.asList(files));
    }

    /** The driver, and every runtime library in {@code dir}. */
    private static Set<File> completeInstall(File dir) {
        Set<File> fs = files(new File(DRIVER_DIR, "libcuda.so.1"));
        for (String name : NativeLoader.RUNTIME_LIBRARIES) {
            fs.add(new File(dir, name));
        }
        return fs;
    }

    private static NativeLoader.Decision decide(String device, boolean cudaLibrary, Set<File> fs) {
        return NativeLoader.decide(device, cudaLibrary, DRIVER_DIRS, RUNTIME_DIRS, fs::contains);
    }

    @Test
    public void cpuRequestNeverTriesTheGpuAndIsNoFallback() {
        NativeLoader.Decision d = decide("cpu", true, completeInstall(CUDA_DIR));
        assertEquals(NativeLoader.Request.CPU, d.request);
        assertFalse(d.tryCuda);
        assertTrue(d.reasons.isEmpty());
        assertTrue(d.runtime.isEmpty());
        assertEquals(NativeLoader.Request.CPU, decide(" CPU ", true, completeInstall(CUDA_DIR)).request);
    }

    @Test
    public void autoWithDriverAndRuntimeTriesCudaWithTheFilesFound() {
        NativeLoader.Decision d = decide("auto", true, completeInstall(CUDA_DIR));
        assertEquals(NativeLoader.Request.AUTO, d.request);
        assertTrue(d.tryCuda);
        assertTrue(d.reasons.toString(), d.reasons.isEmpty());
        assertEquals(NativeLoader.RUNTIME_LIBRARIES, new ArrayList<String>(d.runtime.keySet()));
        assertEquals(new File(CUDA_DIR, "libcufft.so.12"), d.runtime.get("libcufft.so.12"));
    }

    @Test
    public void nullAndEmptyMeanAuto() {
        assertEquals(NativeLoader.Request.AUTO, decide(null, true, completeInstall(CUDA_DIR)).request);
        assertTrue(decide(null, true, completeInstall(CUDA_DIR)).tryCuda);
        assertEquals(NativeLoader.Request.AUTO, decide("  ", false, files()).request);
    }

    @Test
    public void cudaGpuAndOrdinalsMeanCuda() {
        for (String device : new String[] {"cuda", "CUDA", "gpu", "cuda:0", "cuda:12"}) {
            NativeLoader.Decision d = decide(device, true, completeInstall(FIJI_DIR));
            assertEquals(device, NativeLoader.Request.CUDA, d.request);
            assertTrue(device, d.tryCuda);
        }
    }

    @Test
    public void theFirstFolderHoldingALibraryWins() {
        Set<File> fs = completeInstall(FIJI_DIR);
        fs.add(new File(CUDA_DIR, "libcudart.so.13"));
        NativeLoader.Decision d = decide("auto", true, fs);
        assertTrue(d.tryCuda);
        assertEquals(new File(CUDA_DIR, "libcudart.so.13"), d.runtime.get("libcudart.so.13"));
        assertEquals(new File(FIJI_DIR, "libcublas.so.13"), d.runtime.get("libcublas.so.13"));
    }

    @Test
    public void unknownDeviceIsReportedAndReadAsAuto() {
        NativeLoader.Decision d = decide("tpu", true, completeInstall(CUDA_DIR));
        assertEquals(NativeLoader.Request.AUTO, d.request);
        assertTrue(d.tryCuda);
        assertEquals(Collections.singletonList(
                "unknown device 'tpu' in fluorecon.device (use auto, cpu or cuda); using auto"), d.reasons);
        assertEquals(NativeLoader.Request.AUTO, decide("cuda:x", true, files()).request);
    }

    @Test
    public void jarWithoutCudaLibraryFallsBackWithThatReasonOnly() {
        NativeLoader.Decision d = decide("auto", false, completeInstall(CUDA_DIR));
        assertFalse(d.tryCuda);
        assertTrue(d.runtime.isEmpty());
        assertEquals(Collections.singletonList("the CUDA library is not in this plugin (libfluorecon_cuda.so:"
                + " the jar was built without a CUDA toolchain)"), d.reasons);
    }

    @Test
    public void explicitCudaRequestSaysItWasRequested() {
        NativeLoader.Decision d = decide("cuda", false, files());
        assertEquals(NativeLoader.Request.CUDA, d.request);
        assertFalse(d.tryCuda);
        assertEquals(1, d.reasons.size());
        assertTrue(d.reasons.get(0), d.reasons.get(0).startsWith("cuda was requested but the CUDA library is not"));
    }

    @Test
    public void noDriverFallsBackWithTheFoldersSearched() {
        Set<File> fs = completeInstall(CUDA_DIR);
        fs.remove(new File(DRIVER_DIR, "libcuda.so.1"));
        fs.add(new File(CUDA_DIR, "libcuda.so.1")); // a toolkit stub folder is not a driver folder
        NativeLoader.Decision d = decide("auto", true, fs);
        assertFalse(d.tryCuda);
        assertTrue(d.runtime.isEmpty());
        assertEquals(Collections.singletonList("no NVIDIA driver (libcuda.so.1 not found in "
                + "/usr/lib/x86_64-linux-gnu, /usr/lib64)"), d.reasons);
        NativeLoader.Decision none = NativeLoader.decide("cuda", true, Collections.<File>emptyList(),
                RUNTIME_DIRS, fs::contains);
        assertEquals(Collections.singletonList(
                "cuda was requested but no NVIDIA driver (libcuda.so.1 not found in no folder)"), none.reasons);
    }

    @Test
    public void everyMissingRuntimeLibraryIsNamed() {
        Set<File> fs = completeInstall(CUDA_DIR);
        fs.remove(new File(CUDA_DIR, "libcufft.so.12"));
        fs.remove(new File(CUDA_DIR, "libcurand.so.10"));
        NativeLoader.Decision d = decide("auto", true, fs);
        assertFalse(d.tryCuda);
        assertTrue(d.runtime.isEmpty());
        assertEquals(2, d.reasons.size());
        String searched = " not found in /usr/lib/x86_64-linux-gnu, /opt/cuda13/lib, /opt/Fiji.app/lib/linux64"
                + " (install the CUDA 13 runtime, or put its libraries into Fiji's lib/linux64)";
        assertEquals("CUDA runtime library libcufft.so.12" + searched, d.reasons.get(0));
        assertEquals("CUDA runtime library libcurand.so.10" + searched, d.reasons.get(1));
    }

    @Test
    public void pathListsAndLdConfigFolders() throws IOException {
        assertEquals(Arrays.asList(new File("/a"), new File("/b c")), NativeLoader.pathDirs(":/a::/b c:"));
        assertTrue(NativeLoader.pathDirs(null).isEmpty());
        File dir = Files.createTempDirectory("fluorecon-ldconf").toFile();
        try {
            write(new File(dir, "b.conf"), "# comment\n/opt/b\ninclude /etc/other/*.conf\n");
            write(new File(dir, "a.conf"), "  /opt/a  \n\n");
            write(new File(dir, "c.txt"), "/opt/ignored\n");
            assertEquals(Arrays.asList(new File("/opt/a"), new File("/opt/b")), NativeLoader.ldConfigDirs(dir));
        } finally {
            for (File f : dir.listFiles()) {
                f.delete();
            }
            dir.delete();
        }
        assertTrue(NativeLoader.ldConfigDirs(new File("/nonexistent-ld.so.conf.d")).isEmpty());
        assertTrue(NativeLoader.driverDirs().contains(new File("/usr/lib/wsl/lib")));
    }

    /**
     * A CUDA runtime library that exists but cannot be loaded (here not a shared library at all:
     * UnsatisfiedLinkError) leads to the CPU library, with the reason.
     */
    @Test
    public void unloadableRuntimeLibraryFallsBackToTheCpuLibrary() throws Exception {
        assumeCpuLibraryInJar();
        File dir = Files.createTempDirectory("fluorecon-fakecuda").toFile();
        File fake = new File(dir, "libcudart.so.13");
        write(fake, "not a shared library");
        try {
            Map<String, File> runtime = new LinkedHashMap<String, File>();
            runtime.put("libcudart.so.13", fake);
            NativeLoader.Decision d = new NativeLoader.Decision(NativeLoader.Request.AUTO, true, runtime,
                    new ArrayList<String>());
            List<String> reasons = new ArrayList<String>();
            String loaded = NativeLoader.loadFirst(null, null, d, reasons);
            assertTrue(loaded, loaded.endsWith(NativeLoader.RESOURCE));
            assertEquals(reasons.toString(), 1, reasons.size());
            // A file that is not a library is recognised before System.load (issue 16).
            assertTrue(reasons.get(0), reasons.get(0).startsWith("CUDA runtime library " + fake.getPath()
                    + ": it is not a library ("));
            assertTrue(reasons.get(0), reasons.get(0).endsWith("; using the CPU library"));
        } finally {
            fake.delete();
            dir.delete();
        }
    }

    /** A broken CUDA library in Fiji's lib/linux64 leads to the CPU library, with the reason. */
    @Test
    public void unloadableCudaLibraryFallsBackToTheCpuLibrary() throws Exception {
        assumeCpuLibraryInJar();
        File fiji = Files.createTempDirectory("fluorecon-fiji").toFile();
        File lib = new File(new File(fiji, "lib"), "linux64");
        assertTrue(lib.mkdirs());
        File cuda = new File(lib, NativeLoader.CUDA_FILE_NAME);
        write(cuda, "not a shared library either");
        try {
            NativeLoader.Decision d = new NativeLoader.Decision(NativeLoader.Request.CUDA, true,
                    new LinkedHashMap<String, File>(), Arrays.asList("an earlier reason"));
            List<String> reasons = new ArrayList<String>();
            List<String> gpuReasons = new ArrayList<String>();
            String loaded = NativeLoader.loadFirst(null, fiji.getPath(), d, reasons, gpuReasons);
            assertTrue(loaded, loaded.endsWith(NativeLoader.RESOURCE));
            assertEquals(reasons.toString(), 3, reasons.size());
            assertEquals(reasons.subList(0, 2), gpuReasons); // the CPU library's places are not logged
            assertEquals("an earlier reason", reasons.get(0));
            assertTrue(reasons.get(1), reasons.get(1).startsWith("the CUDA library " + cuda.getPath()
                    + " could not be used: it is not a library ("));
            assertEquals(new File(lib, NativeLoader.FILE_NAME).getPath() + ": no such file exists", reasons.get(2));
        } finally {
            cuda.delete();
            lib.delete();
            lib.getParentFile().delete();
            fiji.delete();
        }
    }

    /** A jar without the CUDA library: the attempt is reported, and the CPU one loaded. */
    @Test
    public void missingCudaResourceFallsBackToTheCpuLibrary() throws Exception {
        assumeCpuLibraryInJar();
        assumeTrue("this build carries the CUDA library", NativeLoader.class.getResource(NativeLoader.CUDA_RESOURCE) == null);
        NativeLoader.Decision d = new NativeLoader.Decision(NativeLoader.Request.AUTO, true,
                new LinkedHashMap<String, File>(), new ArrayList<String>());
        List<String> reasons = new ArrayList<String>();
        String loaded = NativeLoader.loadFirst(null, null, d, reasons);
        assertTrue(loaded, loaded.endsWith(NativeLoader.RESOURCE));
        assertEquals(Collections.singletonList("the CUDA library could not be used: plugin jar: it does not contain "
                + "natives/linux_64/libfluorecon_cuda.so (built without a CUDA toolchain);"
                + " using the CPU library"), reasons);
    }

    /** The CPU library (Surefire names it by the system property) says so, and why there is no GPU. */
    @Test
    public void cpuLibraryReportsItsFlavourAndWhyNoGpu() throws FluoreconException {
        String path = System.getProperty(NativeLoader.PROPERTY);
        assumeTrue("no native library at " + path, path != null && new File(path).isFile());
        Native.ensureLoaded();
        assertEquals(NativeLoader.Flavour.CPU, NativeLoader.loadedFlavour());
        assertEquals("cpu", NativeLoader.loadedFlavour().toString());
        String info = Native.info();
        assertTrue(info, info.contains("\nLibrary flavour: cpu\n"));
        assertTrue(info, info.contains("\nCUDA driver: none (this library was built without the 'cuda' feature)\n"));
        assertTrue(NativeLoader.summary(), NativeLoader.summary().isEmpty()); // nothing to log
    }

    private static void assumeCpuLibraryInJar() {
        assumeTrue("no library among the resources", NativeLoader.class.getResource(NativeLoader.RESOURCE) != null);
        assumeTrue(NativeLoader.unsupportedPlatform(System.getProperty("os.name"),
                System.getProperty("os.arch")) == null);
    }

    private static void write(File f, String text) throws IOException {
        Files.write(f.toPath(), text.getBytes(StandardCharsets.UTF_8));
    }
}
