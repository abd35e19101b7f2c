// A localization with an uncertainty of 1e9 nm made Render Localizations... ask for a Gaussian
// kernel 6·10⁸ pixels wide and killed Fiji; it is drawn with the largest σ now. A macro option
// with a typo is named in a warning (and the default runs).
// expect-output: unknown option 'magnificaton' is ignored
dir = getArgument();
setBatchMode(true);
function check(name, ok, detail) {
  if (ok) print("PASS: " + name);
  else print("FAIL: " + name + " (" + detail + ")");
}
csv = getDirectory("temp") + "fluorecon_huge_uncertainty.csv";
File.saveString("\"frame\",\"x [nm]\",\"y [nm]\",\"uncertainty [nm]\"\n1,1000,1000,1e9\n2,2000,2000,10\n", csv);
run("Render Localizations...", "csv=[" + csv + "] pixel_size=100 magnification=5 magnificaton=7");
getStatistics(area, mean, lowest, highest);
finite = false;
if (!isNaN(mean) && highest < 1000000) finite = true;
check("the rendered image is finite", finite, "mean " + mean + ", max " + highest);
drawn = false;
if (highest > 0.01) drawn = true;
check("the sharp localization is drawn", drawn, "max " + highest);
wide = false;
if (getWidth() == 105) wide = true;
check("the magnification given is used", wide, "width " + getWidth());
