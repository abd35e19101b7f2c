// expect: a U-Net takes at most 64 input and output channels
// An edited model.json (out_channels 1e12) aborted the JVM under a memory cap; now refused.
setBatchMode(true);
dir = getDirectory("temp") + "fluorecon_huge_model" + File.separator;
File.makeDirectory(dir);
File.saveString("{\"format\":\"fluorecon-model\",\"format_version\":1,\"fluorecon_version\":\"0.1.0\","
  + "\"method\":\"n2v\",\"name\":\"huge\",\"architecture\":{\"out_channels\":1000000000000},"
  + "\"normalization\":{\"kind\":\"mean_std\",\"mean\":1,\"std\":1},\"training\":null,"
  + "\"history\":{\"history\":[],\"best_epoch\":1,\"best_validation_loss\":0,\"seconds\":0},\"data\":\"\"}",
  dir + "model.json");
newImage("img", "32-bit ramp", 64, 64, 1);
run("Restore with model...", "model_folder=[" + dir + "] tile_size=0");
print("REACHED");
