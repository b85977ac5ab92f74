"""Putting models together from their parts: the frozen VAE, CLAP and vocoder (``parts.py``), a whole AudioLDM
(``latent_diffusion.py``) and a consistency-distilled student (``student.py``). The only code that constructs a
``LatentDiffusion``."""
