// End to end: "Deep-STORM..." with the bundled model on a high-density stack simulated by
// `fluorecon simulate-smlm --preset high-density` (EMCCD: offset 100 ADU, 45 e-/ADU, EM gain
// 300; 100 nm pixels; about 20 molecules per frame, spots overlapping). Each true molecule must
// have a localization in its frame within 100 nm (recall), and each localization a molecule
// (precision). Prints PASS:/FAIL: lines for tests/imagej/run.sh.
// expect-output: Fluorecon Deep-STORM: model 'deepstorm-2d-emccd-100nm' on CPU
dir = getArgument();
setBatchMode(true);

function check(name, ok, detail) {
  if (ok) print("PASS: " + name);
  else print("FAIL: " + name + " (" + detail + ")");
}

open(dir + "smlm-hd/stack.tif");
stack = getTitle();
n = nSlices;
before = getPixel(20, 20);
csv = getDirectory("temp") + "fluorecon_test_deepstorm.csv";
if (File.exists(csv)) deleted = File.delete(csv);
run("Deep-STORM...", "model=[] pixel_size=100 offset=100 photoelectrons_per_adu=45 em_gain=300 threshold=0 density_image save_csv=[" + csv + "] device=auto");
sr = getTitle();
ok = false; if (sr == "stack-DeepSTORM") ok = true;
check("density image shown", ok, sr);
ok = false; if (getWidth() == 256 && getHeight() == 256) ok = true;
check("density image 4x the pixels", ok, "" + getWidth() + "x" + getHeight());
getPixelSize(unit, pw, ph);
ok = false; if (unit == "nm" && abs(pw - 25) < 1e-6) ok = true;
check("density calibration 25 nm", ok, "" + pw + " " + unit);
selectImage(stack);
ok = false; if (getPixel(20, 20) == before) ok = true;
check("input untouched", ok, "" + getPixel(20, 20));

truth = split(File.openAsString(dir + "smlm-hd/truth.csv"), "\n");
found = split(File.openAsString(csv), "\n");
ok = false; if (startsWith(found[0], "\"id\",\"frame\",\"x [nm]\",\"y [nm]\"")) ok = true;
check("ThunderSTORM header", ok, found[0]);
nt = truth.length - 1;
nf = found.length - 1;
tf = newArray(nt); tx = newArray(nt); ty = newArray(nt);
for (i = 0; i < nt; i++) {
  f = split(truth[i + 1], ",");
  tf[i] = parseInt(f[0]); tx[i] = parseFloat(f[2]); ty[i] = parseFloat(f[3]);
}
ff = newArray(nf); fx = newArray(nf); fy = newArray(nf);
for (i = 0; i < nf; i++) {
  f = split(found[i + 1], ",");
  ff[i] = parseInt(f[1]); fx[i] = parseFloat(f[2]); fy[i] = parseFloat(f[3]);
}
hit = 0;
for (i = 0; i < nt; i++) {
  best = 1e9;
  for (j = 0; j < nf; j++) if (ff[j] == tf[i]) best = minOf(best, sqrt(pow(fx[j] - tx[i], 2) + pow(fy[j] - ty[i], 2)));
  if (best < 100) hit++;
}
good = 0;
for (j = 0; j < nf; j++) {
  best = 1e9;
  for (i = 0; i < nt; i++) if (ff[j] == tf[i]) best = minOf(best, sqrt(pow(fx[j] - tx[i], 2) + pow(fy[j] - ty[i], 2)));
  if (best < 100) good++;
}
ok = false; if (hit / nt > 0.85) ok = true;
check("recall above 0.85 at 20 molecules per frame", ok, "" + hit + "/" + nt);
ok = false; if (good / nf > 0.85) ok = true;
check("precision above 0.85", ok, "" + good + "/" + nf);
rows = Table.size("Localizations");
ok = false; if (rows == nf) ok = true;
check("Localizations table", ok, "" + rows + " rows");
deleted = File.delete(csv);
