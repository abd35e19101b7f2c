package fluorecon;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;
import static org.junit.Assume.assumeTrue;

import java.io.File;
import java.util.ArrayList;

import org.junit.Test;

public class NativeLoaderTest {
    @Test
    public void missingExplicitPathIsReportedNotReplaced() {
        String path = new File("/nonexistent/fluorecon/libfluorecon.so").getAbsolutePath();
        try {
            NativeLoader.loadFirst(path, null, new ArrayList<String>());
            fail("a missing library was loaded");
        } catch (FluoreconException e) {
            String message = e.getMessage();
            assertTrue(message, message.contains(NativeLoader.PROPERTY));
            assertTrue(message, message.contains(path));
            assertTrue(message, message.contains("no such file exists"));
        }
    }

    @Test
    public void onlyLinuxX86_64IsSupported() {
        assertNull(NativeLoader.unsupportedPlatform("Linux", "amd64"));
        assertNull(NativeLoader.unsupportedPlatform("Linux", "x86_64"));
        assertEquals("Fluorecon's native engine is built for Linux x86-64; this is Mac OS X/aarch64.",
                NativeLoader.unsupportedPlatform("Mac OS X", "aarch64"));
        assertTrue(NativeLoader.unsupportedPlatform("Windows 10", "amd64").contains("Windows 10/amd64"));
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
}
