package fluorecon;

import static org.junit.Assert.assertNull;
import static org.junit.Assert.assertTrue;

import java.io.File;
import java.nio.file.Files;
import java.util.Collections;
import java.util.Map;

import org.junit.Test;

public class LocalizationsTest {
    /** save_csv= naming the open image's own .tif replaced it on disk; it is refused now. */
    @Test
    public void csvPathThatIsAnOpenImagesFileIsRefused() throws Exception {
        File dir = Files.createTempDirectory("fluorecon-csv-test").toFile();
        File tif = new File(dir, "frames.tif");
        File ro = new File(dir, "old.csv");
        try {
            Files.write(tif.toPath(), new byte[] { 1, 2, 3 });
            Map<File, String> open = Collections.singletonMap(tif, "frames.tif");
            String p = Localizations.csvPathProblem(new File(dir, "sub/../frames.tif"), open);
            assertTrue(p, p != null && p.contains("the open image 'frames.tif'"));
            assertNull(Localizations.csvPathProblem(new File(dir, "frames.csv"), open));
            assertTrue(Localizations.csvPathProblem(dir, open).contains("folder"));
            Files.write(ro.toPath(), new byte[] { 4 });
            assertTrue(ro.setWritable(false, false));
            String q = Localizations.csvPathProblem(ro, open);
            assertTrue(q, q != null && q.contains("read-only"));
            assertTrue(Files.readAllBytes(tif.toPath()).length == 3);
        } finally {
            ro.setWritable(true);
            ro.delete();
            tif.delete();
            dir.delete();
        }
    }
}
