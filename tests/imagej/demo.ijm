// Fluorecon demo: deconvolves the bundled simulated stack with its measured PSF and with a
// Born & Wolf model, scores both against the known truth, reconstructs simulated SIM frames,
// denoises a noisy plane with Noise2Void (PSNR against the clean plane), localizes a simulated
// SMLM stack and renders it (Jaccard index against the true positions), and saves everything.
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

// The same for single planes (Stack.getStatistics needs a stack).
function psnr2d(est, truth) {
  imageCalculator("Subtract create 32-bit", est, truth);
  diff = getTitle();
  run("Square");
  getStatistics(n, mse);
  close(diff);
  selectImage(truth);
  getStatistics(n, mean, lo, hi);
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
// Noise2Void: the central plane of the truth at 20 photons peak with Gaussian noise (σ 3),
// a short training on the image itself, PSNR against the clean plane.
selectImage("truth.tif");
setSlice(floor(z / 2) + 1);
run("Duplicate...", "title=clean");
run("32-bit");
getStatistics(n, mean, lo, hi);
run("Multiply...", "value=" + (20 / hi));
run("Duplicate...", "title=noisy");
random("seed", 1);
run("Add Specified Noise...", "standard=3");
t0 = getTime();
run("Denoise (Noise2Void)...", "epochs=10 steps_per_epoch=20 batch_size=16 patch_size=32 seed=1");
n2v = getTitle();
print(n2v + " (Noise2Void, 10 short epochs): " + (getTime() - t0) + " ms");
print("PSNR against the clean plane: noisy " + d2s(psnr2d("noisy", "clean"), 2) + " dB, Noise2Void "
  + d2s(psnr2d(n2v, "clean"), 2) + " dB");
saveAs("Tiff", out + "n2v-denoised.tif");
n2v = getTitle();
selectImage("noisy");
run("Duplicate...", "title=noisy-view");
setMinAndMax(0, 20);
selectImage(n2v);
run("Duplicate...", "title=n2v-view");
setMinAndMax(0, 20);
run("Combine...", "stack1=noisy-view stack2=n2v-view");
run("8-bit");
saveAs("PNG", out + "n2v-noisy-vs-denoised.png");

// Localization: a simulated EMCCD stack (run.sh: fluorecon simulate-smlm), localized with the
// default settings, rendered at 10 nm pixels, scored against the true positions (a
// localization within 250 nm of a true one in the same frame is a hit; Jaccard index).
if (File.exists(out + "smlm-input/stack.tif")) {
  open(out + "smlm-input/stack.tif");
  csv = out + "localizations.csv";
  t0 = getTime();
  run("Localize Molecules...", "pixel_size=100 offset=100 photoelectrons_per_adu=45 em_gain=300 save_csv=[" + csv + "]");
  print("SMLM stack localized in " + (getTime() - t0) + " ms");
  found = split(File.openAsString(csv), "\n");
  truth = split(File.openAsString(out + "smlm-input/truth.csv"), "\n");
  used = newArray(found.length);
  hits = 0;
  j0 = 1;
  for (i = 1; i < truth.length; i++) {
    t = split(truth[i], ",");
    tf = parseInt(t[0]);
    frame = -1;
    while (j0 < found.length && frame < tf) {
      f = split(found[j0], ",");
      frame = parseInt(f[1]);
      if (frame < tf) j0++;
    }
    best = 250;
    bestj = -1;
    for (j = j0; j < found.length; j++) {
      f = split(found[j], ",");
      if (parseInt(f[1]) != tf) j = found.length;
      else if (used[j] == 0) {
        d = sqrt(pow(parseFloat(f[2]) - parseFloat(t[2]), 2) + pow(parseFloat(f[3]) - parseFloat(t[3]), 2));
        if (d < best) { best = d; bestj = j; }
      }
    }
    if (bestj >= 0) { hits++; used[bestj] = 1; }
  }
  nt = truth.length - 1;
  nf = found.length - 1;
  print("Localizations: " + nf + " found, " + nt + " true; Jaccard index " + d2s(hits / (nt + nf - hits), 3)
    + " (" + hits + " within 250 nm)");
  run("Render Localizations...", "csv=[" + csv + "] pixel_size=100 magnification=10 mode=Gaussian width=64 height=64");
  run("Enhance Contrast", "saturated=0.5");
  saveAs("PNG", out + "smlm-rendered.png");
}
print("Demo finished: results in " + out);
