"""Official weights (original AudioLDM, diffusers, LAION-CLAP, HiFi-GAN) to this project's networks."""
