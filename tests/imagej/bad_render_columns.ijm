// expect: lacks the column(s) "x [nm]", "y [nm]"
setBatchMode(true);
csv = getDirectory("temp") + "fluorecon_bad_columns.csv";
File.saveString("\"id\",\"frame\",\"x [px]\",\"y [px]\"\n1,1,3,4\n", csv);
run("Render Localizations...", "csv=[" + csv + "] pixel_size=100 magnification=5");
print("REACHED");
