// expect: has 9 channels of one frame each
// The 9 raw frames stored as channels: a clear error, not "SIM stack has 1 frames".
setBatchMode(true);
open(getArgument() + "sim/raw.tif");
run("Properties...", "channels=9 slices=1 frames=1");
run("SIM Reconstruction...", "na=1.2 wavelength=525 angles=3 phases=3 order=PAZ background=100");
print("REACHED");
