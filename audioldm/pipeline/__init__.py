"""Generation (plain torch): text to audio, style transfer, inpainting and super-resolution."""
