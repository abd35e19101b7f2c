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
ok = false; if (result == "blurred-RL30") ok = true;
check("result title", ok, result);
getDimensions(w2, h2, c2, z2, t2);
ok = false; if (w2 == w && h2 == h && c2 == c && z2 == z && t2 == t) ok = true;
check("dimensions kept", ok, "" + w2 + "x" + h2 + "x" + z2);
getVoxelSize(pw2, ph2, pd2, unit2);
ok = false; if (pw2 == pw && ph2 == ph && pd2 == pd && unit2 == unit) ok = true;
check("calibration kept", ok, "" + pw2 + " " + pd2 + " " + unit2);
ok = false; if (bitDepth() == 32) ok = true;
check("32-bit result", ok, bitDepth());
before = psnr("blurred.tif", "truth.tif");
after = psnr(result, "truth.tif");
print("PSNR against the truth: input " + d2s(before, 2) + " dB, RL30 " + d2s(after, 2) + " dB");
ok = false; if (after > before + 3) ok = true;
check("PSNR gain > 3 dB", ok, d2s(before, 2) + " -> " + d2s(after, 2));

selectImage("blurred.tif");
Stack.getStatistics(n, meanAfter);
ok = false; if (meanAfter == meanBefore && getPixel(40, 50) == v0) ok = true;
check("input untouched", ok, "" + meanBefore + " vs " + meanAfter);

// A model PSF (the sample was simulated with these optics, but a PSF cropped to 65×65×31:
// the model's larger support is a small mismatch, as with real data).
selectImage("blurred.tif");
run("Deconvolve (Richardson-Lucy)...", "psf=[Model: Born & Wolf] na=1.4 wavelength=520 immersion=1.518 iterations=30");
model = getTitle();
ok = false; if (model == "blurred-RL30") ok = true;
check("model PSF result title", ok, model);
m = psnr(model, "truth.tif");
print("PSNR with the Born & Wolf model, 30 iterations: " + d2s(m, 2) + " dB");
ok = false; if (m > before + 2.5) ok = true;
check("model PSF PSNR gain > 2.5 dB", ok, d2s(m, 2));

// Biggs-Andrews acceleration: 15 iterations beat 30 plain ones.
selectImage("blurred.tif");
run("Deconvolve (Richardson-Lucy)...", "psf=psf.tif iterations=15 acceleration");
fast = psnr(getTitle(), "truth.tif");
print("PSNR with acceleration, 15 iterations: " + d2s(fast, 2) + " dB");
ok = false; if (fast > after) ok = true;
check("15 accelerated iterations beat 30 plain", ok, d2s(fast, 2) + " vs " + d2s(after, 2));

// Circulant boundaries and TV regularisation run and give finite output.
selectImage("blurred.tif");
run("Deconvolve (Richardson-Lucy)...", "psf=psf.tif iterations=5 regularization=0.002 boundary=circulant");
Stack.getStatistics(n, mean, lo, hi);
ok = false; if (getTitle() == "blurred-RL5" && !isNaN(mean) && lo >= 0) ok = true;
check("RL-TV circulant runs", ok, "" + mean + " " + lo);

print("done");
