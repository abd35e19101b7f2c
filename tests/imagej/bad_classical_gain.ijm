// expect: The gain must be a positive number of ADU per photon
setBatchMode(true);
newImage("ramp", "32-bit ramp", 64, 64, 1);
run("Denoise (classical)...", "noise=[camera parameters] gain=0 offset=0 read_noise=1");
print("REACHED");
