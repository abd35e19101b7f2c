package fluorecon;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Predicate;

/**
 * Finds and loads the native engine, once per JVM. The plugin carries the CPU library of every
 * platform it was built for ({@link NativePlatform}: {@code natives/<platform>/}, {@code
 * libfluorecon.so}, {@code fluorecon.dll} or {@code libfluorecon.dylib}) and, on Linux x86-64, may
 * carry the CUDA library {@code libfluorecon_cuda.so}, which needs an NVIDIA driver and the CUDA 13
 * runtime libraries. On a platform without a build, the first command says so, naming the
 * platform, before its dialog opens. Looks, in order:
 * <ol>
 * <li>at the path in the system property {@value #PROPERTY}. When it is set, it is the only place
 * tried: a wrong path is reported instead of silently loading another copy;</li>
 * <li>when the requested device ({@value #DEVICE_PROPERTY}: {@code auto}, {@code cpu} or
 * {@code cuda}; system property, else the ImageJ preference of that name, else {@code auto}) is not
 * {@code cpu} and {@link #decide} finds a driver and the runtime libraries: the CUDA library, in
 * {@code <ImageJ>/lib/linux64/} and then in the plugin jar at {@value #CUDA_RESOURCE};</li>
 * <li>the CPU library in Fiji's folder for the platform ({@code <ImageJ>/lib/linux64/},
 * {@code win64/}, {@code macosx/}, …), when ImageJ is present;</li>
 * <li>the CPU library in the plugin jar at {@value #RESOURCE}.</li>
 * </ol>
 * A library from the jar is copied into a per-process temporary folder and the copy is deleted as
 * soon as it is loaded (Linux keeps a loaded library mapped), so that a killed JVM leaves nothing
 * behind; failing that, when the JVM exits. The reason each place (and the GPU) was passed over is
 * kept for {@link #fallbackReasons()}, written once to the ImageJ log and shown by About.
 */
final class NativeLoader {
    /** System property naming the library file to load; overrides every other place. */
    static final String PROPERTY = "fluorecon.library";
    /** System property (and ImageJ preference) with the requested device: auto, cpu or cuda. */
    static final String DEVICE_PROPERTY = "fluorecon.device";
    /** The platform this JVM runs on; null when the engine is not built for it. */
    static final NativePlatform PLATFORM = NativePlatform.current();
    /** Where this platform's CPU library sits inside the plugin jar (natives/&lt;platform&gt;/). */
    static final String RESOURCE = PLATFORM == null ? "/natives/linux_64/libfluorecon.so" : PLATFORM.resource();
    /** The CPU library's file name on this platform (libfluorecon.so, fluorecon.dll, libfluorecon.dylib). */
    static final String FILE_NAME = PLATFORM == null ? "libfluorecon.so" : PLATFORM.libraryFile;
    /** Fiji's folder of native libraries for this platform, under {@code Fiji.app/lib/}. */
    static final String FIJI_LIB = PLATFORM == null ? "linux64" : PLATFORM.fijiLib;
    /** Where the CUDA library sits inside the plugin jar (absent from a CPU-only build). */
    static final String CUDA_RESOURCE = "/natives/linux_64/libfluorecon_cuda.so";
    static final String CUDA_FILE_NAME = "libfluorecon_cuda.so";
    /** The NVIDIA driver's CUDA driver API; installed with the driver, never shipped with us. */
    static final String DRIVER = "libcuda.so.1";
    /**
     * CUDA 13 runtime libraries the CUDA library needs, in the order they are preloaded
     * (libcublas.so.13 needs libcublasLt.so.13).
     */
    static final List<String> RUNTIME_LIBRARIES = Collections.unmodifiableList(Arrays.asList(
            "libcudart.so.13", "libcublasLt.so.13", "libcublas.so.13", "libcufft.so.12", "libcurand.so.10",
            "libnvrtc.so.13"));
    /** Folders where distributions, WSL and containers put the NVIDIA driver and CUDA libraries. */
    static final List<String> STANDARD_DIRS = Collections.unmodifiableList(Arrays.asList(
            "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib",
            "/lib", "/usr/lib/wsl/lib", "/usr/local/nvidia/lib64", "/usr/lib/x86_64-linux-gnu/nvidia/current"));
    /** Folders of a CUDA toolkit installation, searched for the runtime libraries. */
    static final List<String> TOOLKIT_DIRS = Collections.unmodifiableList(Arrays.asList(
            "/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"));

    /** Which build of the engine was loaded. */
    enum Flavour {
        CPU, CUDA;

        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** The device asked for, as the loader understands it. */
    enum Request {
        AUTO, CPU, CUDA
    }

    /** What {@link #decide} found: whether to try the CUDA library, with what, and why not. */
    static final class Decision {
        final Request request;
        /** True: try the CUDA library (after preloading {@link #runtime}). */
        final boolean tryCuda;
        /** Runtime library file name → the file found for it, in preload order (empty unless tryCuda). */
        final Map<String, File> runtime;
        /** Why the CUDA library is not tried (one sentence each); empty when it is, or for cpu. */
        final List<String> reasons;

        Decision(Request request, boolean tryCuda, Map<String, File> runtime, List<String> reasons) {
            this.request = request;
            this.tryCuda = tryCuda;
            this.runtime = Collections.unmodifiableMap(runtime);
            this.reasons = Collections.unmodifiableList(reasons);
        }
    }

    private static String loadedPath;
    private static Flavour loadedFlavour;
    private static Request request;
    private static final List<String> fallbackReasons = new ArrayList<String>();
    /** The part of fallbackReasons about the GPU (why the CUDA library was not used), for the log. */
    private static final List<String> gpuReasons = new ArrayList<String>();

    private NativeLoader() {
    }

    /**
     * Loads the library unless already loaded; the first time, logs which build was loaded when
     * it is the GPU one, and every reason the GPU was not used.
     *
     * @return where the library came from (see {@link #loadedPath()})
     * @throws FluoreconException listing why every place failed
     */
    static synchronized String ensureLoaded() throws FluoreconException {
        if (loadedPath == null) {
            List<String> reasons = new ArrayList<String>();
            String imageJDir = imageJDirectory();
            String device = System.getProperty(DEVICE_PROPERTY);
            if (device == null) {
                device = imageJPreference(DEVICE_PROPERTY);
            }
            Decision decision = decide(device, cudaLibraryAvailable(imageJDir), driverDirs(),
                    runtimeDirs(imageJDir), File::isFile);
            List<String> gpu = new ArrayList<String>();
            loadedPath = loadFirst(System.getProperty(PROPERTY), imageJDir, decision, reasons, gpu);
            gpuReasons.addAll(gpu);
            loadedFlavour = loadedPath.endsWith(CUDA_FILE_NAME) ? Flavour.CUDA : Flavour.CPU;
            request = decision.request;
            fallbackReasons.addAll(reasons);
            logOnce(summary());
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

    /** @return the build loaded (cpu or cuda), null when not loaded (yet) */
    static synchronized Flavour loadedFlavour() {
        return loadedFlavour;
    }

    /** @return the device requested when the library was loaded, null when not loaded (yet) */
    static synchronized Request requestedDevice() {
        return request;
    }

    /** @return why places tried before the loaded one were passed over (empty when the first worked) */
    static synchronized List<String> fallbackReasons() {
        return Collections.unmodifiableList(new ArrayList<String>(fallbackReasons));
    }

    /**
     * @return the log text after loading: the build used, and why the GPU was not used, one line
     *         each; empty when the CPU library was loaded as asked (cpu, or a library named by
     *         {@value #PROPERTY})
     */
    static synchronized String summary() {
        StringBuilder s = new StringBuilder();
        if (loadedFlavour == Flavour.CUDA) {
            s.append("Fluorecon: using the GPU (CUDA library ").append(loadedPath).append(')');
        } else if (!gpuReasons.isEmpty()) {
            s.append("Fluorecon: using the CPU library");
        }
        for (String reason : gpuReasons) {
            s.append("\nFluorecon:   ").append(reason);
        }
        return s.toString();
    }

    /**
     * Decides whether to try the CUDA library. Pure: every file lookup goes through {@code exists}.
     *
     * @param device               the requested device: auto (also null or empty), cpu, cuda, gpu
     *                             or cuda:N (any case); anything else is reported and read as auto
     * @param cudaLibraryAvailable whether the CUDA library is in the jar or ImageJ's lib/linux64
     * @param driverDirs           folders searched for {@value #DRIVER}
     * @param runtimeDirs          folders searched for the {@link #RUNTIME_LIBRARIES}, first match wins
     * @param exists               whether a file exists
     */
    static Decision decide(String device, boolean cudaLibraryAvailable, List<File> driverDirs,
            List<File> runtimeDirs, Predicate<File> exists) {
        List<String> reasons = new ArrayList<String>();
        Map<String, File> runtime = new LinkedHashMap<String, File>();
        String d = device == null ? "" : device.trim().toLowerCase(Locale.ROOT);
        Request req;
        if (d.isEmpty() || d.equals("auto")) {
            req = Request.AUTO;
        } else if (d.equals("cpu")) {
            return new Decision(Request.CPU, false, runtime, reasons);
        } else if (d.equals("cuda") || d.equals("gpu") || d.matches("cuda:\\d+")) {
            req = Request.CUDA;
        } else {
            reasons.add("unknown device '" + device.trim() + "' in " + DEVICE_PROPERTY
                    + " (use auto, cpu or cuda); using auto");
            req = Request.AUTO;
        }
        String prefix = req == Request.CUDA ? "cuda was requested but " : "";
        if (!cudaLibraryAvailable && PLATFORM != null && !PLATFORM.hasCudaBuild()) {
            reasons.add(prefix + "the CUDA build of the engine exists for Linux x86-64 only; this is "
                    + PLATFORM.label);
            return new Decision(req, false, new LinkedHashMap<String, File>(), reasons);
        }
        if (!cudaLibraryAvailable) {
            reasons.add(prefix + "the CUDA library is not in this plugin (" + CUDA_FILE_NAME
                    + ": the jar was built without a CUDA toolchain)");
            return new Decision(req, false, new LinkedHashMap<String, File>(), reasons);
        }
        if (find(DRIVER, driverDirs, exists) == null) {
            reasons.add(prefix + "no NVIDIA driver (" + DRIVER + " not found in " + describe(driverDirs) + ")");
            return new Decision(req, false, new LinkedHashMap<String, File>(), reasons);
        }
        for (String name : RUNTIME_LIBRARIES) {
            File found = find(name, runtimeDirs, exists);
            if (found == null) {
                reasons.add(prefix + "CUDA runtime library " + name + " not found in " + describe(runtimeDirs)
                        + " (install the CUDA 13 runtime, or put its libraries into Fiji's lib/linux64)");
            } else {
                runtime.put(name, found);
            }
        }
        boolean complete = runtime.size() == RUNTIME_LIBRARIES.size();
        return new Decision(req, complete, complete ? runtime : new LinkedHashMap<String, File>(), reasons);
    }

    private static File find(String name, List<File> dirs, Predicate<File> exists) {
        for (File dir : dirs) {
            File f = new File(dir, name);
            if (exists.test(f)) {
                return f;
            }
        }
        return null;
    }

    private static String describe(List<File> dirs) {
        if (dirs.isEmpty()) {
            return "no folder";
        }
        StringBuilder s = new StringBuilder();
        for (File dir : dirs) {
            s.append(s.length() == 0 ? "" : ", ").append(dir.getPath());
        }
        return s.toString();
    }

    /**
     * Loads the library from the first place that works. Package-private for tests.
     *
     * @param explicitPath the value of {@value #PROPERTY}, or null
     * @param imageJDir    the ImageJ/Fiji folder, or null when ImageJ is absent
     * @param decision     whether to try the CUDA library first (see {@link #decide}); its reasons
     *                     are added to {@code reasons} unless {@code explicitPath} is used
     * @param reasons      receives one line per place passed over
     * @return where the library came from (see {@link #loadedPath()})
     */
    static String loadFirst(String explicitPath, String imageJDir, Decision decision, List<String> reasons)
            throws FluoreconException {
        return loadFirst(explicitPath, imageJDir, decision, reasons, new ArrayList<String>());
    }

    /** As above; {@code gpuReasons} also receives the lines about the GPU (why CUDA was not used). */
    static String loadFirst(String explicitPath, String imageJDir, Decision decision, List<String> reasons,
            List<String> gpuReasons) throws FluoreconException {
        if (explicitPath != null && !explicitPath.trim().isEmpty()) {
            File file = new File(explicitPath.trim());
            if (file.getName().equals(CUDA_FILE_NAME) && decision.request != Request.CPU) {
                preload(decision.runtime, reasons); // best effort; the load below says what is missing
            }
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
        int before = reasons.size();
        reasons.addAll(decision.reasons);
        if (decision.tryCuda) {
            String loaded = loadCuda(imageJDir, decision, reasons);
            if (loaded != null) {
                gpuReasons.addAll(reasons.subList(before, reasons.size()));
                return loaded;
            }
        }
        gpuReasons.addAll(reasons.subList(before, reasons.size()));
        if (imageJDir != null) {
            File installed = new File(new File(new File(imageJDir, "lib"), FIJI_LIB), FILE_NAME);
            String problem = tryLoad(installed);
            if (problem == null) {
                return installed.getAbsolutePath();
            }
            reasons.add(installed.getPath() + ": " + problem);
        }
        String loaded = loadFromJar(RESOURCE, FILE_NAME, reasons);
        if (loaded == null) {
            throw notFound(reasons);
        }
        return loaded;
    }

    /** @return where the CUDA library came from, or null (with the reasons added) when it failed */
    private static String loadCuda(String imageJDir, Decision decision, List<String> reasons) {
        if (!preload(decision.runtime, reasons)) {
            return null;
        }
        if (imageJDir != null) {
            File installed = new File(new File(new File(imageJDir, "lib"), "linux64"), CUDA_FILE_NAME);
            if (installed.isFile()) {
                String problem = tryLoad(installed);
                if (problem == null) {
                    return installed.getAbsolutePath();
                }
                reasons.add("the CUDA library " + installed.getPath() + " could not be used: " + problem
                        + "; using the CPU library");
                return null;
            }
        }
        List<String> jarReasons = new ArrayList<String>();
        String loaded = loadFromJar(CUDA_RESOURCE, CUDA_FILE_NAME, jarReasons);
        for (String r : jarReasons) {
            reasons.add("the CUDA library could not be used: " + r + "; using the CPU library");
        }
        return loaded;
    }

    /**
     * Loads the CUDA runtime libraries from the files found, so that the CUDA library's
     * dependencies resolve (by soname) even from folders the system's loader does not search.
     *
     * @return false, with a reason added, when one could not be loaded
     */
    private static boolean preload(Map<String, File> runtime, List<String> reasons) {
        for (Map.Entry<String, File> lib : runtime.entrySet()) {
            String problem = tryLoad(lib.getValue());
            if (problem != null) {
                reasons.add("CUDA runtime library " + lib.getValue().getPath() + ": " + problem
                        + "; using the CPU library");
                return false;
            }
        }
        return true;
    }

    /** @return the jar URL of the loaded copy, or null with a reason ("plugin jar: …") added */
    private static String loadFromJar(String resource, String fileName, List<String> reasons) {
        File extracted;
        try {
            extracted = extractFromJar(resource, fileName);
        } catch (IOException e) {
            reasons.add("plugin jar: " + e.getMessage());
            return null;
        }
        String problem = tryLoad(extracted);
        if (extracted.delete()) {
            extracted.getParentFile().delete();
        }
        if (problem != null) {
            reasons.add("plugin jar: " + problem);
            return null;
        }
        return String.valueOf(NativeLoader.class.getResource(resource));
    }

    /** @return null on a platform the engine is built for ({@link NativePlatform}), else a message naming it */
    static String unsupportedPlatform(String os, String arch) {
        return NativePlatform.of(os, arch) != null ? null : NativePlatform.unsupportedMessage(os, arch);
    }

    /** @return null when loaded, else why not (for a sentence "…, but &lt;why&gt;") */
    private static String tryLoad(File file) {
        if (file.isDirectory()) {
            return "it is a folder; name the library file itself (…/" + FILE_NAME + ")";
        }
        if (!file.isFile()) {
            return "no such file exists";
        }
        // A truncated or foreign file must never reach System.load: the dynamic loader maps it,
        // and touching a page past its end kills the JVM with SIGBUS, which cannot be caught.
        String damaged = libraryProblem(file);
        if (damaged != null) {
            return damaged;
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

    /**
     * Checks, before {@link System#load}, that {@code file} can be this platform's library: on
     * Linux a whole ELF library of this machine ({@link #elfProblem(File, int)}); on Windows a PE
     * file ("MZ"), on macOS a 64-bit Mach-O file, of a plausible size.
     *
     * @return null when it can, else why not (for a sentence "…, but &lt;why&gt;")
     */
    static String libraryProblem(File file) {
        String folder = PLATFORM == null ? "linux_64" : PLATFORM.folder;
        if (folder.startsWith("linux")) {
            return elfProblem(file, folder.equals("linux_arm64") ? 183 : 62);
        }
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(file, "r")) {
            byte[] h = new byte[4];
            if (f.length() < 4096) {
                return "it is not a library (" + f.length() + " bytes): the file is truncated or damaged; "
                        + "reinstall the plugin";
            }
            f.readFully(h);
            boolean windows = folder.startsWith("windows");
            boolean ok = windows ? h[0] == 'M' && h[1] == 'Z'
                    : (h[0] & 0xff) == 0xcf && (h[1] & 0xff) == 0xfa && (h[2] & 0xff) == 0xed && (h[3] & 0xff) == 0xfe;
            return ok ? null : "it is not a " + (windows ? "Windows DLL" : "macOS library") + " (wrong header)";
        } catch (IOException e) {
            return "it could not be read (" + e.getMessage() + ")";
        }
    }

    /** {@link #elfProblem(File, int)} for an x86-64 library. */
    static String elfProblem(File file) {
        return elfProblem(file, 62);
    }

    /**
     * Checks that {@code file} is a whole 64-bit little-endian ELF shared library for the ELF
     * machine {@code machine} (62 x86-64, 183 AArch64): its header, and every program segment and
     * the section table inside the file. Reads only the headers.
     *
     * @return null when it is, else why not (for a sentence "…, but &lt;why&gt;")
     */
    static String elfProblem(File file, int machine) {
        try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(file, "r")) {
            long length = f.length();
            byte[] h = new byte[64];
            if (length < h.length) {
                return "it is not a library (" + length + " bytes): the file is truncated or damaged; "
                        + "reinstall the plugin";
            }
            f.readFully(h);
            java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(h).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            if (h[0] != 0x7f || h[1] != 'E' || h[2] != 'L' || h[3] != 'F') {
                return "it is not a Linux library (no ELF header)";
            }
            if (h[4] != 2 || h[5] != 1 || b.getShort(18) != machine) {
                return "it is not a 64-bit Linux " + (machine == 183 ? "arm64" : "x86-64") + " library";
            }
            long phoff = b.getLong(32);
            long shoff = b.getLong(40);
            int phentsize = b.getShort(54) & 0xffff;
            int phnum = b.getShort(56) & 0xffff;
            int shentsize = b.getShort(58) & 0xffff;
            int shnum = b.getShort(60) & 0xffff;
            String truncated = "the file is truncated (" + length
                    + " bytes; an interrupted copy or download?); reinstall the plugin or copy the library again";
            if (phoff < 0 || phentsize < 56 || phoff + (long) phnum * phentsize > length
                    || shoff < 0 || shoff + (long) shnum * shentsize > length) {
                return truncated;
            }
            byte[] ph = new byte[phentsize];
            for (int i = 0; i < phnum; i++) {
                f.seek(phoff + (long) i * phentsize);
                f.readFully(ph);
                java.nio.ByteBuffer p = java.nio.ByteBuffer.wrap(ph).order(java.nio.ByteOrder.LITTLE_ENDIAN);
                long offset = p.getLong(8);
                long size = p.getLong(32);
                if (offset < 0 || size < 0 || offset + size > length) {
                    return truncated;
                }
            }
            return null;
        } catch (IOException e) {
            return "it could not be read (" + e.getMessage() + ")";
        }
    }

    /** Copies a library out of the jar into a fresh temporary folder, both to be deleted on exit. */
    private static File extractFromJar(String resource, String fileName) throws IOException {
        InputStream in = NativeLoader.class.getResourceAsStream(resource);
        if (in == null) {
            throw new IOException("it does not contain " + resource.substring(1) + (resource.equals(CUDA_RESOURCE)
                    ? " (built without a CUDA toolchain)"
                    : " (this jar was built without the library for " + (PLATFORM == null ? "this platform"
                            : PLATFORM.label) + "; the release jar of `make release` carries every platform's)"));
        }
        try {
            File dir;
            try {
                dir = Files.createTempDirectory("fluorecon-").toFile();
            } catch (IOException e) {
                String tmp = System.getProperty("java.io.tmpdir");
                throw new IOException("the library cannot be copied into the temporary folder " + tmp + " ("
                        + e + "): make that folder writable, free space on its disk, or start Fiji with "
                        + "-Djava.io.tmpdir=<a writable folder>");
            }
            dir.deleteOnExit();
            File file = new File(dir, fileName);
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

    /** @return whether the CUDA library is in ImageJ's lib/linux64 or in the jar (Linux x86-64 only) */
    private static boolean cudaLibraryAvailable(String imageJDir) {
        if (PLATFORM == null || !PLATFORM.hasCudaBuild()) {
            return false;
        }
        if (imageJDir != null && new File(new File(new File(imageJDir, "lib"), "linux64"), CUDA_FILE_NAME).isFile()) {
            return true;
        }
        return NativeLoader.class.getResource(CUDA_RESOURCE) != null;
    }

    /** @return LD_LIBRARY_PATH's folders, then the system loader's (ld.so.conf.d), then the standard ones */
    static List<File> driverDirs() {
        Set<File> dirs = new LinkedHashSet<File>(pathDirs(System.getenv("LD_LIBRARY_PATH")));
        dirs.addAll(ldConfigDirs(new File("/etc/ld.so.conf.d")));
        for (String d : STANDARD_DIRS) {
            dirs.add(new File(d));
        }
        return new ArrayList<File>(dirs);
    }

    /** @return the driver folders, then ImageJ's lib/linux64, $CUDA_HOME, $CUDA_PATH and the toolkit's */
    private static List<File> runtimeDirs(String imageJDir) {
        Set<File> dirs = new LinkedHashSet<File>(driverDirs());
        if (imageJDir != null) {
            dirs.add(new File(new File(imageJDir, "lib"), "linux64"));
        }
        for (String variable : new String[] {"CUDA_HOME", "CUDA_PATH"}) {
            String home = System.getenv(variable);
            if (home != null && !home.trim().isEmpty()) {
                dirs.add(new File(home.trim(), "lib64"));
            }
        }
        for (String d : TOOLKIT_DIRS) {
            dirs.add(new File(d));
        }
        return new ArrayList<File>(dirs);
    }

    /** @return the folders of a colon-separated path list (empty entries skipped) */
    static List<File> pathDirs(String path) {
        List<File> dirs = new ArrayList<File>();
        if (path != null) {
            for (String part : path.split(":")) {
                if (!part.trim().isEmpty()) {
                    dirs.add(new File(part.trim()));
                }
            }
        }
        return dirs;
    }

    /** @return the folders listed in the *.conf files of {@code confDir} (comments and includes skipped) */
    static List<File> ldConfigDirs(File confDir) {
        List<File> dirs = new ArrayList<File>();
        File[] files = confDir.listFiles();
        if (files == null) {
            return dirs;
        }
        Arrays.sort(files);
        for (File conf : files) {
            if (!conf.getName().endsWith(".conf")) {
                continue;
            }
            try (BufferedReader r = new BufferedReader(
                    new InputStreamReader(new java.io.FileInputStream(conf), StandardCharsets.UTF_8))) {
                for (String line = r.readLine(); line != null; line = r.readLine()) {
                    String l = line.trim();
                    if (l.startsWith("/")) {
                        dirs.add(new File(l));
                    }
                }
            } catch (IOException e) {
                // an unreadable file adds no folders
            }
        }
        return dirs;
    }

    /** @return the ImageJ folder, or null when ImageJ is absent or does not know it */
    private static String imageJDirectory() {
        try {
            return ImageJ.directory();
        } catch (LinkageError e) { // ImageJ is not on the class path
            return null;
        }
    }

    /** @return the ImageJ preference, or null when ImageJ is absent or has none */
    private static String imageJPreference(String key) {
        try {
            return ImageJ.preference(key);
        } catch (LinkageError e) {
            return null;
        }
    }

    private static void logOnce(String text) {
        if (text.isEmpty()) {
            return;
        }
        try {
            ImageJ.log(text);
        } catch (LinkageError e) {
            System.err.println(text);
        }
    }

    /** Touches ImageJ classes only when called, so that the loader works without ImageJ. */
    private static final class ImageJ {
        static String directory() {
            return ij.IJ.getDirectory("imagej");
        }

        static String preference(String key) {
            return ij.Prefs.get(key, (String) null);
        }

        static void log(String text) {
            ij.IJ.log(text);
        }
    }
}
