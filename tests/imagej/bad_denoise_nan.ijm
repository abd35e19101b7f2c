// expect: not numbers
setBatchMode(true);
newImage("nan", "32-bit ramp", 64, 64, 1);
setPixel(3, 4, NaN);
run("Denoise (Noise2Void)...", "epochs=1 steps_per_epoch=1 batch_size=2 patch_size=32 filters=4 kernel_size=3 masked_percent=1 learning_rate=0.001 seed=1");
print("REACHED");
