"""PatchGAN discriminator (pix2pix / taming-transformers' NLayerDiscriminator), the VAE's critic.

Written here because no maintained library exposes it as a module. Layout, for ``n_layers`` 3:
conv4x4/2 (no norm) -> [conv4x4/2 + BatchNorm] x 2 -> conv4x4/1 + BatchNorm -> conv4x4/1 to one
channel; LeakyReLU(0.2) between; channel multipliers 1, 2, 4, 8 (capped at 8).
Input [B, C, T, F] -> patch logits [B, 1, T', F'].
"""

from __future__ import annotations

import torch
import torch.nn as nn


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels: int = 1, channels: int = 64, n_layers: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(channels * prev, channels * mult, 4, stride, 1, bias=False),
                nn.BatchNorm2d(channels * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers.append(nn.Conv2d(channels * mult, 1, 4, 1, 1))
        self.main = nn.Sequential(*layers)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, C, T, F] -> patch logits [B, 1, T', F']."""
        return self.main(x)


def _init_weights(module: nn.Module) -> None:
    """DCGAN initialisation, as the reference discriminator uses."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
