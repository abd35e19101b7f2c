// expect: all zero
setBatchMode(true);
newImage("img", "32-bit ramp", 32, 32, 1);
newImage("emptypsf", "32-bit black", 9, 9, 1);
selectImage("img");
run("Deconvolve (Richardson-Lucy)...", "psf=emptypsf iterations=5");
print("REACHED");
