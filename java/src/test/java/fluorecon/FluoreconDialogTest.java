package fluorecon;

import static org.junit.Assert.assertEquals;

import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.Set;

import org.junit.Test;

public class FluoreconDialogTest {
    /** A typo in a macro option ("iteratons=3") was silently ignored; it is now named. */
    @Test
    public void unknownMacroKeysAreNamed() {
        Set<String> known = new LinkedHashSet<String>(Arrays.asList("psf", "iterations", "accelerate", "device"));
        assertEquals(Arrays.asList("iteratons"),
                FluoreconDialog.unknownKeys("psf=[PSF of cells.tif] iteratons=3 accelerate device=cpu", known));
        assertEquals(Collections.emptyList(),
                FluoreconDialog.unknownKeys("psf=[a b=c d] iterations=40 accelerate", known));
        assertEquals(Arrays.asList("acclerate", "x"),
                FluoreconDialog.unknownKeys("  acclerate iterations=2 x=[unclosed", known));
        assertEquals(Arrays.asList("iteratons"),
                FluoreconDialog.unknownKeys("ITERATONS=3 iteratons=4", known));
        // Nested brackets, as ImageJ records a choice such as "[Model: Born & Wolf]".
        assertEquals(Collections.emptyList(),
                FluoreconDialog.unknownKeys("psf=[[Model: Born & Wolf]] iterations=2", known));
    }
}
