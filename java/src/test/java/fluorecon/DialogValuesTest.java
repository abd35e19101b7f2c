package fluorecon;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;
import static org.junit.Assert.fail;

import ij.Prefs;

import org.junit.Test;

public class DialogValuesTest {
    @Test
    public void resultTitlesDropTheFileExtensionOnly() {
        assertEquals("cells", Dialogs.withoutExtension("cells.tif"));
        assertEquals("cells", Dialogs.withoutExtension("cells.ome.tiff"));
        assertEquals("C1-cells", Dialogs.withoutExtension("C1-cells.czi"));
        assertEquals("cells 1.5x", Dialogs.withoutExtension("cells 1.5x"));
        assertEquals("cells", Dialogs.withoutExtension("cells"));
    }

    @Test
    public void dialogFieldsShowSmallValues() {
        assertEquals(4, FluoreconCommand.decimals(0, 4));
        assertEquals(4, FluoreconCommand.decimals(0.5, 4));
        assertEquals(7, FluoreconCommand.decimals(1e-5, 4));
    }

    @Test
    public void deviceChoicesAreCheckedAndRemembered() throws FluoreconException {
        assertEquals("auto", Devices.CHOICES[0]);
        for (String d : Devices.CHOICES) {
            assertEquals(d, Devices.check(d));
        }
        try {
            Devices.check("gpu");
            fail("unknown device accepted");
        } catch (FluoreconException e) {
            assertTrue(e.getMessage(), e.getMessage().equals("Unknown device \"gpu\": use auto, cpu or cuda."));
        }
        String key = "fluorecon.test.device";
        Prefs.set(key, "cuda");
        assertEquals("cuda", Devices.remembered(key));
        Prefs.set(key, "tpu"); // an old or hand-edited preference falls back to auto
        assertEquals("auto", Devices.remembered(key));
        assertEquals("auto", Devices.remembered("fluorecon.test.never-set"));
    }
}
