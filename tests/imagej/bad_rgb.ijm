// expect: RGB images are not supported
setBatchMode(true);
newImage("rgb", "RGB ramp", 32, 32, 1);
run("Deconvolve (Richardson-Lucy)...", "psf=[Model: Gaussian] iterations=5");
print("REACHED");
