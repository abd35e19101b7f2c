// End to end: "Denoise (Noise2Void)..." called as a user's macro would, on one plane of the
// simulated sample with added noise (known truth). Tiny training so that it runs in seconds.
// expect-output: Noise2Void "noisy": epoch 6/6
// expect-output: Fluorecon: Noise2Void "noisy" → "noisy-N2V"
// expect-output: Warning: CUDA:0 was requested
dir = getArgument();
setBatchMode(true);

function check(name, ok, detail) {
  if (ok) print("PASS: " + name);
  else print("FAIL: " + name + " (" + detail + ")");
}

function psnr(est, truth) {
  imageCalculator("Subtract create 32-bit", est, truth);
  diff = getTitle();
  run("Square");
  getStatistics(n, mse);
  close(diff);
  selectImage(truth);
  getStatistics(n, mean, lo, hi);
  return 10 * log((hi - lo) * (hi - lo) / mse) / log(10);
}

open(dir + "truth.tif");
getDimensions(w, h, c, z, t);
run("Duplicate...", "title=clean duplicate range=" + floor(z / 2 + 1) + "-" + floor(z / 2 + 1));
run("32-bit");
getStatistics(n, mean, lo, hi);
run("Multiply...", "value=" + (20 / hi));
run("Duplicate...", "title=noisy");
run("Add Specified Noise...", "standard=3");
setVoxelSize(0.1, 0.1, 0.3, "micron");
selectImage("clean");
setVoxelSize(0.1, 0.1, 0.3, "micron");
selectImage("noisy");
v0 = getPixel(10, 12);

run("Denoise (Noise2Void)...", "epochs=6 steps_per_epoch=15 batch_size=16 patch_size=32 filters=8 kernel_size=3 masked_percent=1.5 learning_rate=0.002 seed=1 device=cuda");
result = getTitle();
ok = false; if (result == "noisy-N2V") ok = true;
check("result title", ok, result);
ok = false; if (getWidth() == w && getHeight() == h && nSlices == 1) ok = true;
check("dimensions kept", ok, "" + getWidth() + "x" + getHeight() + "x" + nSlices);
getVoxelSize(pw, ph, pd, unit);
ok = false; if (pw == 0.1 && pd == 0.3 && startsWith(unit, "micron")) ok = true;
check("calibration kept", ok, "" + pw + " " + pd + " " + unit);
before = psnr("noisy", "clean");
after = psnr(result, "clean");
print("PSNR against the clean image: noisy " + d2s(before, 2) + " dB, N2V " + d2s(after, 2) + " dB");
ok = false; if (after > before + 5) ok = true;
check("PSNR gain > 5 dB", ok, d2s(before, 2) + " -> " + d2s(after, 2));
selectImage("noisy");
ok = false; if (getPixel(10, 12) == v0) ok = true;
check("input untouched", ok, getPixel(10, 12));
