// A PSF larger than the image is cropped (with a log line), the result has the image's size.
// expect-output: cropped
setBatchMode(true);
function check(name, ok, detail) {
  if (ok) print("PASS: " + name);
  else print("FAIL: " + name + " (" + detail + ")");
}
run("Generate PSF...", "model=Gaussian na=1.2 wavelength=600 immersion=1.33 pixel_size=100 z_step=300 width=65 height=65 depth=1");
psf = getTitle();
newImage("small", "32-bit ramp", 20, 16, 1);
run("Add...", "value=1");
run("Deconvolve (Richardson-Lucy)...", "psf=[" + psf + "] iterations=5");
getDimensions(w, h, c, z, t);
ok = false; if (getTitle() == "small-RL5" && w == 20 && h == 16) ok = true;
check("big PSF: result has the image size", ok, getTitle() + " " + w + "x" + h);
print("done");
