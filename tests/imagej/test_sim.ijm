// End to end: SIM Reconstruction... on simulated raw frames (fluorecon simulate-sim: 256×256,
// 80 nm pixels, 3 angles × 3 phases, PAZ, background 100, pattern k0 = 3.886 /µm, line spacing
// 257.35 nm, directions 12°, 72°, 132°, modulation 0.8): outputs, calibration, the parameter
// table against the truth, the Fourier view, resolution against the widefield image, and a
// time-lapse hyperstack.
// expect-output: Fluorecon SIM: computed on the CPU
// expect-output: Fluorecon: SIM reconstruction of "raw.tif"
// expect-output: Warning: CUDA:0 was requested
setBatchMode(true);
dir = getArgument();

function check(name, ok, detail) {
  if (ok) print("PASS: " + name);
  else print("FAIL: " + name + " (" + detail + ")");
}

// Correlation coefficient of two images of the same size.
function correlation(a, b) {
  selectImage(a); getRawStatistics(n, ma);
  selectImage(b); getRawStatistics(n, mb);
  selectImage(a); run("Duplicate...", "title=ca"); run("32-bit"); run("Subtract...", "value=" + ma);
  selectImage(b); run("Duplicate...", "title=cb"); run("32-bit"); run("Subtract...", "value=" + mb);
  imageCalculator("Multiply create 32-bit", "ca", "cb"); getRawStatistics(n, cov); close();
  imageCalculator("Multiply create 32-bit", "ca", "ca"); getRawStatistics(n, va); close();
  imageCalculator("Multiply create 32-bit", "cb", "cb"); getRawStatistics(n, vb); close();
  close("ca"); close("cb");
  return cov / sqrt(va * vb);
}

open(dir + "sim/raw.tif");
raw = getTitle();
Stack.getStatistics(n, rawMean);
options = "na=1.2 wavelength=525 angles=3 phases=3 order=PAZ time_points=0 wiener=0.05 "
  + "apodization_cutoff=2 apodization_bend=0.9 otf_attenuation=0.3 otf=[[None: model OTF]] "
  + "background=100 edge_taper=12";
run("SIM Reconstruction...", options + " widefield wiener_widefield fourier_view results_table");

ok = false; if (isOpen("raw-SIM") && isOpen("raw-widefield") && isOpen("raw-Wiener widefield")
  && isOpen("raw-SIM Fourier view")) ok = true;
check("SIM, widefield, Wiener widefield and Fourier view opened", ok, "missing output");
selectImage("raw-SIM");
getDimensions(w, h, c, z, t);
ok = false; if (w == 512 && h == 512 && z == 1 && t == 1) ok = true;
check("SIM image has 2x the pixels", ok, "" + w + "x" + h + " z" + z + " t" + t);
getVoxelSize(vw, vh, vd, unit);
ok = false; if (abs(vw - 0.04) < 1e-6 && abs(vh - 0.04) < 1e-6) ok = true;
check("SIM pixel size halved", ok, "" + vw + " " + unit);
selectImage(raw);
Stack.getStatistics(n, after);
ok = false; if (after == rawMean && nSlices == 9) ok = true;
check("raw frames untouched", ok, "" + rawMean + " -> " + after);

// Parameters against the truth.
rows = Table.size("SIM parameters");
ok = false; if (rows == 3) ok = true;
check("one table row per angle", ok, rows);
truthDir = newArray(12, 72, 132);
ok = true; detail = "";
for (i = 0; i < rows; i++) {
  spacing = Table.get("Line spacing [nm]", i, "SIM parameters");
  direction = Table.get("Direction [deg]", i, "SIM parameters");
  m = Table.get("Modulation", i, "SIM parameters");
  quality = Table.getString("Quality", i, "SIM parameters");
  detail = detail + " " + d2s(spacing, 2) + "nm " + d2s(direction, 2) + "deg m" + d2s(m, 3) + " " + quality;
  if (abs(spacing - 257.35) > 0.5 || abs(direction - truthDir[i]) > 0.2 || abs(m - 0.8) > 0.05
      || quality != "ok") ok = false;
}
check("k0, direction and modulation match the truth", ok, detail);

selectImage("raw-SIM Fourier view");
ok = false; if (Overlay.size == 11) ok = true;
check("Fourier view marks 6 peaks and 2 circles, with a 3-line legend", ok, Overlay.size);

// Resolution: the SIM image correlates better with the (upscaled) truth than the widefield.
open(dir + "sim/truth.tif");
run("Size...", "width=512 height=512 interpolation=Bilinear");
rename("truth2x");
cSim = correlation("raw-SIM", "truth2x");
cWf = correlation("raw-widefield", "truth2x");
ok = false; if (cSim > cWf + 0.05) ok = true;
check("SIM closer to the truth than widefield", ok, "r = " + d2s(cSim, 3) + " vs " + d2s(cWf, 3));

// A time-lapse: the same 9 frames twice, as a hyperstack z = 9, t = 2.
selectImage(raw);
run("Duplicate...", "title=copy duplicate");
run("Concatenate...", "  title=timelapse image1=" + raw + " image2=copy");
selectImage("timelapse");
Stack.setDimensions(1, 9, 2);
run("SIM Reconstruction...", options + " device=cuda");
getDimensions(w, h, c, z, t);
ok = false; if (getTitle() == "timelapse-SIM" && w == 512 && z == 1 && t == 2) ok = true;
check("time-lapse keeps its time points", ok, getTitle() + " " + w + " z" + z + " t" + t);
Stack.setFrame(1); getRawStatistics(n, m1);
Stack.setFrame(2); getRawStatistics(n, m2);
ok = false; if (abs(m1 - m2) < 1e-4 * m1 && m1 > 0) ok = true;
check("both time points reconstructed alike", ok, "" + m1 + " vs " + m2);
print("done");
