// expect: is above the signal
setBatchMode(true);
newImage("dark", "16-bit ramp", 64, 64, 3);
run("Localize Molecules...", "pixel_size=100 offset=60000 photoelectrons_per_adu=1 em_gain=0");
print("REACHED");
