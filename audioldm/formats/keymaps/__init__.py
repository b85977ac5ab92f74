"""Key rules from the official layouts to this project's networks (original AudioLDM UNet, VAE and HiFi-GAN;
LAION-CLAP), shared by the format modules that hold those networks."""
