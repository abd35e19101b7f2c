// End to end: "Localize Molecules..." and "Render Localizations..." as a user's macro would
// call them, on a stack of spots at known positions drawn here (integrated-Gaussian-like
// spots of 3000 photons, σ 1.3 px, background 20 photons, offset 100 ADU, 1 e-/ADU, Gaussian
// approximation of shot noise). Prints PASS:/FAIL: lines for tests/imagej/run.sh.
// expect-output: Fluorecon: 30 localizations in 30 frames
// expect-output: Warning: CUDA:0 was requested
// expect-output: Localizing on CPU (
dir = getArgument();
setBatchMode(true);
random("seed", 7);

function check(name, ok, detail) {
  if (ok) print("PASS: " + name);
  else print("FAIL: " + name + " (" + detail + ")");
}

n = 30;
newImage("storm", "32-bit black", 64, 64, n);
run("Properties...", "channels=1 slices=1 frames=" + n + " pixel_width=0.1 pixel_height=0.1 voxel_depth=1 unit=micron");
xs = newArray(n);
ys = newArray(n);
s2 = 2 * 1.3 * 1.3;
for (k = 0; k < n; k++) {
  setSlice(k + 1);
  xs[k] = 10 + 40 * random;
  ys[k] = 10 + 40 * random;
  for (y = 0; y < 64; y++) {
    for (x = 0; x < 64; x++) {
      dx = x + 0.5 - xs[k];
      dy = y + 0.5 - ys[k];
      mu = 20 + 3000 / (3.14159265 * s2) * exp(-(dx * dx + dy * dy) / s2);
      setPixel(x, y, 100 + mu + sqrt(mu) * random("gaussian"));
    }
  }
}
csv = getDirectory("temp") + "fluorecon_test_localize.csv";
if (File.exists(csv)) deleted = File.delete(csv);
before = getPixel(20, 20);
run("Localize Molecules...", "pixel_size=100 offset=100 photoelectrons_per_adu=1 em_gain=0 threshold=1 fitter=MLE psf_sigma=130 fit_radius=3 sigma_tolerance=0.12 drift_correction=0 save_csv=[" + csv + "] device=cuda");
ok = false; if (getPixel(20, 20) == before && getTitle() == "storm") ok = true;
check("input untouched", ok, getTitle());

ok = false; if (File.exists(csv)) ok = true;
check("CSV written", ok, csv);
lines = split(File.openAsString(csv), "\n");
ok = false; if (startsWith(lines[0], "\"id\",\"frame\",\"x [nm]\",\"y [nm]\"")) ok = true;
check("ThunderSTORM header", ok, lines[0]);
ok = false; if (lines.length == n + 1) ok = true;
check("one localization per frame", ok, "" + (lines.length - 1));
worst = 0;
for (i = 1; i < lines.length; i++) {
  f = split(lines[i], ",");
  k = parseInt(f[1]) - 1;
  d = sqrt(pow(parseFloat(f[2]) - 100 * xs[k], 2) + pow(parseFloat(f[3]) - 100 * ys[k], 2));
  worst = maxOf(worst, d);
}
ok = false; if (worst < 25) ok = true;
check("positions within 25 nm of the truth", ok, "worst " + worst + " nm");

run("Render Localizations...", "csv=[" + csv + "] pixel_size=100 magnification=5 mode=Gaussian width=64 height=64 drift_correction=0");
getRawStatistics(count, mean);
ok = false; if (getWidth() == 320 && getHeight() == 320) ok = true;
check("rendered size", ok, "" + getWidth() + "x" + getHeight());
ok = false; if (abs(count * mean - n) < 0.01) ok = true;
check("rendering conserves the localizations", ok, "sum " + (count * mean));
getPixelSize(unit, pw, ph);
ok = false; if (unit == "nm" && abs(pw - 20) < 1e-6) ok = true;
check("rendered calibration 20 nm", ok, "" + pw + " " + unit);

run("Render Localizations...", "pixel_size=100 magnification=4 mode=Histogram width=64 height=64");
getRawStatistics(count, mean);
ok = false; if (abs(count * mean - n) < 0.01) ok = true;
check("histogram from the Localizations table", ok, "sum " + (count * mean));
deleted = File.delete(csv);
