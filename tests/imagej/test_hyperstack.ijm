// End to end: a 2-channel, 3-plane, 2-frame hyperstack keeps its dimensions and calibration,
// each (channel, frame) stack is deconvolved on its own; Generate PSF and About work.
// expect-output: Device: CPU
// expect-output: Library: 
// expect-output: Licence: BSD 2-Clause
// expect-output: Platform libraries in this jar: linux_64
setBatchMode(true);

function check(name, ok, detail) {
  if (ok) print("PASS: " + name);
  else print("FAIL: " + name + " (" + detail + ")");
}

// A 2D Gaussian PSF from the plugin itself.
run("Generate PSF...", "model=Gaussian na=1.2 wavelength=600 immersion=1.33 pixel_size=100 z_step=300 width=15 height=15 depth=1");
psf = getTitle();
getDimensions(pw, ph, pc, pz, pt);
ok = false; if (pw == 15 && ph == 15 && pz == 1) ok = true;
check("Generate PSF size", ok, "" + pw + "x" + ph + "x" + pz);
getRawStatistics(count, mean);
ok = false; if (abs(mean * count - 1) < 1e-3) ok = true;
check("Generate PSF sums to 1", ok, mean * count);
getVoxelSize(vw, vh, vd, vunit);
ok = false; if (abs(vw - 0.1) < 1e-9 && (vunit == "micron" || vunit == "microns" || vunit == "µm")) ok = true;
check("Generate PSF calibration", ok, "" + vw + " " + vunit);
cx = getPixel(7, 7);
getStatistics(area, mean, min, max);
ok = false; if (cx == max) ok = true;
check("Generate PSF peak at centre", ok, "" + cx + " vs " + max);

newImage("hs", "32-bit black", 48, 40, 2, 3, 2);
Stack.setXUnit("micron");
run("Properties...", "channels=2 slices=3 frames=2 pixel_width=0.1 pixel_height=0.1 voxel_depth=0.3 frame=[5 sec]");
// A bright dot per (c, z, t) at a different place, on a background of 1.
for (ch = 1; ch <= 2; ch++) for (sl = 1; sl <= 3; sl++) for (fr = 1; fr <= 2; fr++) {
  Stack.setPosition(ch, sl, fr);
  run("Set...", "value=1 slice");
  setPixel(10 + 5 * ch + sl, 10 + 7 * fr, 100);
}
run("Deconvolve (Richardson-Lucy)...", "psf=[" + psf + "] iterations=10");
r = getTitle();
getDimensions(w, h, c, z, t);
ok = false; if (w == 48 && h == 40 && c == 2 && z == 3 && t == 2) ok = true;
check("hyperstack dims kept", ok, "" + w + "x" + h + " c" + c + " z" + z + " t" + t);
getVoxelSize(vw, vh, vd, vunit);
ok = false; if (abs(vw - 0.1) < 1e-6 && abs(vd - 0.3) < 1e-6) ok = true;
check("hyperstack calibration kept", ok, "" + vw + " " + vd);
// Each dot comes back sharper (peak above the blurred peak), at its own place.
ok = true;
for (ch = 1; ch <= 2; ch++) for (sl = 1; sl <= 3; sl++) for (fr = 1; fr <= 2; fr++) {
  Stack.setPosition(ch, sl, fr);
  getStatistics(area, mean, min, max);
  if (getPixel(10 + 5 * ch + sl, 10 + 7 * fr) != max) ok = false;
}
check("each (c,z,t) plane processed in place", ok, "a peak moved");

run("About Fluorecon...");
print("done");
