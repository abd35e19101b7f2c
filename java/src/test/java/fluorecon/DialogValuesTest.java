package fluorecon;

import static org.junit.Assert.assertEquals;

import org.junit.Test;

public class DialogValuesTest {
    @Test
    public void resultTitlesDropTheFileExtensionOnly() {
        assertEquals("cells", DeconvolvePlugIn.withoutExtension("cells.tif"));
        assertEquals("cells", DeconvolvePlugIn.withoutExtension("cells.ome.tiff"));
        assertEquals("C1-cells", DeconvolvePlugIn.withoutExtension("C1-cells.czi"));
        assertEquals("cells 1.5x", DeconvolvePlugIn.withoutExtension("cells 1.5x"));
        assertEquals("cells", DeconvolvePlugIn.withoutExtension("cells"));
    }

    @Test
    public void dialogFieldsShowSmallValues() {
        assertEquals(4, FluoreconCommand.decimals(0, 4));
        assertEquals(4, FluoreconCommand.decimals(0.5, 4));
        assertEquals(7, FluoreconCommand.decimals(1e-5, 4));
    }
}
