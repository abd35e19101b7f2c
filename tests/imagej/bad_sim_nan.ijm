// expect: not numbers
setBatchMode(true);
open(getArgument() + "sim/raw.tif");
setSlice(5);
setPixel(20, 30, NaN);
run("SIM Reconstruction...", "na=1.2 wavelength=525 angles=3 phases=3 order=PAZ background=100");
print("REACHED");
