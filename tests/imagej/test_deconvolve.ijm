// End to end: "Deconvolve (Richardson-Lucy)..." called as a user's macro would, on the
// simulated sample stack (known truth). Prints PASS:/FAIL: lines for tests/imagej/run.sh.
dir = getArgument();
setBatchMode(true);

function check(name, ok, detail) {
  if (ok) print("PASS: " + name);
  else print("FAIL: " + name + " (" + detail + ")");
}

// PSNR of image `est` against image `truth` (dB, range of the truth).
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

open(dir + "truth.tif");
open(dir + "psf.tif");
open(dir + "blurred.tif");
getVoxelSize(pw, ph, pd, unit);
getDimensions(w, h, c, z, t);
Stack.getStatistics(n, meanBefore);
v0 = getPixel(40, 50);

run("Deconvolve (Richardson-Lucy)...", "psf=psf.tif iterations=30");
result = getTitle();
check("result title", result == "blurred-RL30", result);
getDimensions(w2, h2, c2, z2, t2);
check("dimensions kept", w2 == w && h2 == h && c2 == c && z2 == z && t2 == t, "" + w2 + "x" + h2 + "x" + z2);
getVoxelSize(pw2, ph2, pd2, unit2);
check("calibration kept", pw2 == pw && ph2 == ph && pd2 == pd && unit2 == unit, "" + pw2 + " " + pd2 + " " + unit2);
check("32-bit result", bitDepth() == 32, bitDepth());
before = psnr("blurred.tif", "truth.tif");
after = psnr(result, "truth.tif");
print("PSNR against the truth: input " + d2s(before, 2) + " dB, RL30 " + d2s(after, 2) + " dB");
check("PSNR gain > 3 dB", after > before + 3, d2s(before, 2) + " -> " + d2s(after, 2));

selectImage("blurred.tif");
Stack.getStatistics(n, meanAfter);
check("input untouched", meanAfter == meanBefore && getPixel(40, 50) == v0, "" + meanBefore + " vs " + meanAfter);

// A model PSF (the sample was simulated with these optics), accelerated, fewer iterations.
selectImage("blurred.tif");
run("Deconvolve (Richardson-Lucy)...", "psf=[Model: Born & Wolf] na=1.4 wavelength=520 immersion=1.518 iterations=12 acceleration");
model = getTitle();
check("model PSF result title", model == "blurred-RL12", model);
m = psnr(model, "truth.tif");
print("PSNR with the Born & Wolf model, 12 accelerated iterations: " + d2s(m, 2) + " dB");
check("model PSF PSNR gain > 3 dB", m > before + 3, d2s(m, 2));

// Circulant boundaries and TV regularisation run and give finite output.
selectImage("blurred.tif");
run("Deconvolve (Richardson-Lucy)...", "psf=psf.tif iterations=5 regularization=0.002 boundary=circulant");
Stack.getStatistics(n, mean, lo, hi);
check("RL-TV circulant runs", getTitle() == "blurred-RL5" && !isNaN(mean) && lo >= 0, "" + mean + " " + lo);

print("done");
