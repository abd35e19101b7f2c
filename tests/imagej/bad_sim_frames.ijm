// expect: SIM stack has 8 frames; 3 angles × 3 phases needs a multiple of 9
setBatchMode(true);
open(getArgument() + "sim/raw.tif");
run("Make Substack...", "slices=1-8");
run("SIM Reconstruction...", "na=1.2 wavelength=525 angles=3 phases=3 order=PAZ background=100");
print("REACHED");
