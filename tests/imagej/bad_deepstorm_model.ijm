// expect: cannot read the model description
setBatchMode(true);
newImage("frames", "16-bit ramp", 32, 32, 4);
run("Deep-STORM...", "model=/nonexistent/deepstorm pixel_size=100 offset=0 photoelectrons_per_adu=1 em_gain=0");
print("REACHED");
