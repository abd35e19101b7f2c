// expect: not numbers
setBatchMode(true);
newImage("nan", "32-bit ramp", 32, 32, 1);
setPixel(3, 4, NaN);
run("Generate PSF...", "model=Gaussian na=1.2 wavelength=600 immersion=1.33 pixel_size=100 z_step=300 width=9 height=9 depth=1");
psf = getTitle();
selectImage("nan");
run("Deconvolve (Richardson-Lucy)...", "psf=[" + psf + "] iterations=5");
print("REACHED");
