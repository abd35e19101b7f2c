// expect: has a pixel that is not a number at x=5, y=7
setBatchMode(true);
newImage("nan", "32-bit ramp", 32, 32, 4);
setSlice(3);
setPixel(5, 7, NaN);
run("Deep-STORM...", "pixel_size=100 offset=0 photoelectrons_per_adu=1 em_gain=0");
print("REACHED");
