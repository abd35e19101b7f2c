// expect: probably in ZAP order
// PAZ frames re-sorted into ZAP order (angle fastest), reconstructed as PAZ.
setBatchMode(true);
open(getArgument() + "sim/raw.tif");
run("Make Substack...", "slices=1,4,7,2,5,8,3,6,9");
run("SIM Reconstruction...", "na=1.2 wavelength=525 angles=3 phases=3 order=PAZ background=100");
print("REACHED");
