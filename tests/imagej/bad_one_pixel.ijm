// expect: only 1×1 pixels
setBatchMode(true);
newImage("dot", "32-bit white", 1, 1, 1);
run("Deconvolve (Richardson-Lucy)...", "psf=[Model: Gaussian] pixel_size=100 iterations=5");
print("REACHED");
