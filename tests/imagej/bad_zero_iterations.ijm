// expect: iterations
setBatchMode(true);
newImage("img", "32-bit ramp", 32, 32, 1);
run("Deconvolve (Richardson-Lucy)...", "psf=[Model: Gaussian] pixel_size=100 iterations=0");
print("REACHED");
