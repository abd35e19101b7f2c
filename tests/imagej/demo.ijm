// Fluorecon demo: deconvolves the bundled simulated stack with its measured PSF and with a
// Born & Wolf model, scores both against the known truth, reconstructs simulated SIM frames,
// and saves everything.
// Argument: "<samples dir>|<output dir>".
args = split(getArgument(), "|");
dir = args[0];
out = args[1];
setBatchMode(true);

function psnr(est, truth) {
  imageCalculator("Subtract create 32-bit stack", est, truth);
  diff = getTitle();
  run("Square", "stack");
  Stack.getStatistics(n, mse);
  close(diff);
  selectImage(truth);
  Stack.getStatistics(n, mean, lo, hi);
  return 10 * log((hi - lo) * (hi - lo) / mse) / log(10);
}

run("About Fluorecon...");
open(dir + "truth.tif");
open(dir + "psf.tif");
open(dir + "blurred.tif");
getDimensions(w, h, c, z, t);
print("Input: blurred.tif, " + w + "x" + h + "x" + z + " voxels");

t0 = getTime();
run("Deconvolve (Richardson-Lucy)...", "psf=psf.tif iterations=40");
rl = getTitle();
print(rl + ": " + (getTime() - t0) + " ms");
saveAs("Tiff", out + "blurred-RL40-measured-psf.tif");
rl = getTitle();

selectImage("blurred.tif");
t0 = getTime();
run("Deconvolve (Richardson-Lucy)...", "psf=[Model: Born & Wolf] na=1.4 wavelength=520 immersion=1.518 iterations=30");
model = getTitle();
print(model + " (Born & Wolf model): " + (getTime() - t0) + " ms");
saveAs("Tiff", out + "blurred-RL30-model-psf.tif");
model = getTitle();

selectImage("blurred.tif");
t0 = getTime();
run("Deconvolve (Richardson-Lucy)...", "psf=psf.tif iterations=15 acceleration");
print(getTitle() + " (accelerated): " + (getTime() - t0) + " ms");
saveAs("Tiff", out + "blurred-RL15-accelerated-measured-psf.tif");
fast = getTitle();

print("PSNR against the truth:");
print("  input (widefield):               " + d2s(psnr("blurred.tif", "truth.tif"), 2) + " dB");
print("  RL 40, measured PSF:             " + d2s(psnr(rl, "truth.tif"), 2) + " dB");
print("  RL 30, Born & Wolf model PSF:    " + d2s(psnr(model, "truth.tif"), 2) + " dB");
print("  RL 15 accelerated, measured PSF: " + d2s(psnr(fast, "truth.tif"), 2) + " dB");

// Side-by-side montage of the central plane for a quick look.
selectImage("blurred.tif");
setSlice(floor(z / 2) + 1);
run("Duplicate...", "title=in");
run("Enhance Contrast", "saturated=0.1");
selectImage(rl);
setSlice(floor(z / 2) + 1);
run("Duplicate...", "title=out");
run("Enhance Contrast", "saturated=0.1");
run("Combine...", "stack1=in stack2=out");
saveAs("PNG", out + "central-plane-before-after.png");

// SIM: simulated raw frames (written by run.sh with fluorecon simulate-sim).
if (File.exists(out + "sim-input/raw.tif")) {
  open(out + "sim-input/raw.tif");
  t0 = getTime();
  run("SIM Reconstruction...", "na=1.2 wavelength=525 angles=3 phases=3 order=PAZ background=100 widefield fourier_view results_table");
  print("raw-SIM (SIM reconstruction incl. parameter estimation): " + (getTime() - t0) + " ms");
  saveAs("Tiff", out + "sim-reconstruction.tif");
  selectImage("raw-widefield");
  saveAs("Tiff", out + "sim-widefield.tif");
  Table.save(out + "sim-parameters.csv", "SIM parameters");
}
print("Demo finished: results in " + out);
