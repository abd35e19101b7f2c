// End to end: "Denoise (classical)..." called as a user's macro would, on one plane of the
// simulated sample (known truth) with signal-dependent noise of known gain 2 ADU/photon and
// variance 9 ADU² at zero (Gaussian approximation of Poisson–Gaussian noise, seeded); first
// with the noise estimated from the image, then with the camera's parameters, then on a
// 2-plane stack.
// expect-output: Fluorecon: estimated Poisson–Gaussian noise: variance =
// expect-output: Fluorecon: given Poisson–Gaussian noise: variance = 2.0000 · mean + 9.0000 ADU²
// expect-output: Fluorecon: GAT + BM3D "noisy" → "noisy-BM3D"
// expect-output: Fluorecon: BM3D denoises the 2 planes of the stack one by one (2D)
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
mid = floor(z / 2 + 1);
run("Duplicate...", "title=clean duplicate range=" + mid + "-" + (mid + 1));
run("32-bit");
getStatistics(n, mean, lo, hi);
// 30 photons peak above 3 photons of background, in ADU (gain 2).
run("Multiply...", "value=" + (60 / hi) + " stack");
run("Add...", "value=6 stack");
setVoxelSize(0.1, 0.1, 0.3, "micron");
run("Duplicate...", "title=noisystack duplicate");
random("seed", 7);
for (s = 1; s <= nSlices; s++) {
  setSlice(s);
  for (y = 0; y < getHeight(); y++)
    for (x = 0; x < getWidth(); x++) {
      v = getPixel(x, y);
      setPixel(x, y, v + sqrt(2 * v + 9) * random("gaussian"));
    }
}
setVoxelSize(0.1, 0.1, 0.3, "micron");
// Plane 1 alone for the 2D checks.
selectImage("clean");
run("Duplicate...", "title=clean1");
selectImage("noisystack");
setSlice(1);
run("Duplicate...", "title=noisy");
selectImage("noisy");
v0 = getPixel(10, 12);

run("Denoise (classical)...", "noise=[estimate from the image]");
result = getTitle();
ok = false; if (result == "noisy-BM3D") ok = true;
check("result title", ok, result);
ok = false; if (getWidth() == w && getHeight() == h && nSlices == 1) ok = true;
check("dimensions kept", ok, "" + getWidth() + "x" + getHeight() + "x" + nSlices);
getVoxelSize(pw, ph, pd, unit);
ok = false; if (pw == 0.1 && pd == 0.3 && startsWith(unit, "micron")) ok = true;
check("calibration kept", ok, "" + pw + " " + pd + " " + unit);
before = psnr("noisy", "clean1");
after = psnr(result, "clean1");
print("PSNR against the clean image: noisy " + d2s(before, 2) + " dB, GAT + BM3D " + d2s(after, 2) + " dB");
ok = false; if (after > before + 8) ok = true;
check("PSNR gain > 8 dB (estimated noise)", ok, d2s(before, 2) + " -> " + d2s(after, 2));
selectImage("noisy");
ok = false; if (getPixel(10, 12) == v0) ok = true;
check("input untouched", ok, getPixel(10, 12));

selectImage("noisy");
run("Denoise (classical)...", "noise=[camera parameters] gain=2 offset=0 read_noise=3");
given = getTitle();
after2 = psnr(given, "clean1");
ok = false; if (after2 > before + 8 && abs(after2 - after) < 1) ok = true;
check("PSNR with the camera's parameters close to the estimate's", ok, d2s(after2, 2) + " vs " + d2s(after, 2));

selectImage("noisystack");
rename("stack");
run("Denoise (classical)...", "noise=[estimate from the image]");
ok = false; if (getTitle() == "stack-BM3D" && nSlices == 2) ok = true;
check("stack: 2 planes", ok, getTitle() + " " + nSlices);
