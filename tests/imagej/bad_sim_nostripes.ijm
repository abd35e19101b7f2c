// expect: no stripe pattern was found
// Nine identical widefield frames: no illumination pattern.
setBatchMode(true);
open(getArgument() + "sim/truth.tif");
run("Multiply...", "value=1000");
run("Add Specified Noise...", "standard=5");
for (i = 1; i < 9; i++) run("Add Slice");
for (i = 2; i <= 9; i++) { setSlice(1); run("Select All"); run("Copy"); setSlice(i); run("Paste"); }
run("Select None");
run("SIM Reconstruction...", "na=1.2 wavelength=525 angles=3 phases=3 order=PAZ");
print("REACHED");
