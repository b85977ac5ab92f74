"""Checkpoint formats: this project's own and the official ones (original AudioLDM, diffusers, LAION-CLAP,
HiFi-GAN, transformers), each one module behind ``registry.py``; their key rules are in ``keymaps/``."""
