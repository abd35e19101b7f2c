// expect: is not calibrated in nm or µm: give the camera pixel size
// An image without a calibration in a macro that names no pixel_size: an error, not 80 nm.
setBatchMode(true);
open(getArgument() + "sim/raw.tif");
run("Properties...", "unit=pixel pixel_width=1 pixel_height=1 voxel_depth=1");
run("SIM Reconstruction...", "na=1.2 wavelength=525 angles=3 phases=3 order=PAZ background=100");
print("REACHED");
