// expect: is not a model folder
setBatchMode(true);
newImage("img", "32-bit ramp", 64, 64, 1);
run("Restore with model...", "model_folder=/nonexistent/fluorecon-model tile_size=0");
print("REACHED");
