"""HiFi-GAN's multi-period and multi-scale discriminators (Kong et al., 2020).

Written here because the libraries we use ship only the generator. Layer plan at width 1.0:
- period discriminator (one per period 2, 3, 5, 7, 11): the waveform folded to [B, 1, N/p, p];
  Conv2d (5, 1), stride (3, 1): 1 -> 32 -> 128 -> 512 -> 1024, then 1024 -> 1024 stride 1, and a
  (3, 1) output conv to 1 channel; weight norm on every conv.
- scale discriminator (raw, x1/2 and x1/4 average-pooled audio): Conv1d 1 -> 128 (k15), grouped
  k41 convs 128 -> 128 (s2, g4) -> 256 (s2, g16) -> 512 (s4, g16) -> 1024 (s4, g16) -> 1024
  (s1, g16), 1024 -> 1024 (k5), output k3 to 1; spectral norm on the first scale, weight norm on
  the others.
Every discriminator returns (logits [B, L], feature maps list). ``width`` scales all channels.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

SLOPE = 0.1


def _ch(channels: int, width: float, multiple: int = 16) -> int:
    """Scaled channel count, kept a multiple of ``multiple`` (for the grouped convolutions)."""
    return channels if width == 1.0 else max(multiple, int(round(channels * width / multiple)) * multiple)


def run_stack(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Convs with leaky ReLU, then the output conv: (logits [B, L], every layer's feature map)."""
    features = []
    for conv in convs:
        x = F.leaky_relu(conv(x), SLOPE)
        features.append(x)
    x = post(x)
    features.append(x)
    return x.flatten(1), features


class PeriodDiscriminator(nn.Module):
    def __init__(self, period: int, width: float = 1.0):
        super().__init__()
        self.period = period
        chans = [1] + [_ch(c, width) for c in (32, 128, 512, 1024)]
        self.convs = nn.ModuleList(
            [weight_norm(nn.Conv2d(i, o, (5, 1), (3, 1), padding=(2, 0))) for i, o in zip(chans, chans[1:])]
            + [weight_norm(nn.Conv2d(chans[-1], chans[-1], (5, 1), 1, padding=(2, 0)))]
        )
        self.post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """wave [B, 1, N] -> (logits [B, L], feature maps)."""
        b, c, n = wave.shape
        if n % self.period:
            wave = F.pad(wave, (0, self.period - n % self.period), mode="reflect")
        return run_stack(self.convs, self.post, wave.view(b, c, -1, self.period))


class ScaleDiscriminator(nn.Module):
    def __init__(self, width: float = 1.0, spectral: bool = False):
        super().__init__()
        norm = spectral_norm if spectral else weight_norm
        c = [_ch(n, width) for n in (128, 256, 512, 1024)]
        self.convs = nn.ModuleList(
            [
                norm(nn.Conv1d(1, c[0], 15, 1, padding=7)),
                norm(nn.Conv1d(c[0], c[0], 41, 2, groups=4, padding=20)),
                norm(nn.Conv1d(c[0], c[1], 41, 2, groups=16, padding=20)),
                norm(nn.Conv1d(c[1], c[2], 41, 4, groups=16, padding=20)),
                norm(nn.Conv1d(c[2], c[3], 41, 4, groups=16, padding=20)),
                norm(nn.Conv1d(c[3], c[3], 41, 1, groups=16, padding=20)),
                norm(nn.Conv1d(c[3], c[3], 5, 1, padding=2)),
            ]
        )
        self.post = norm(nn.Conv1d(c[3], 1, 3, 1, padding=1))

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """wave [B, 1, N] -> (logits [B, L], feature maps)."""
        return run_stack(self.convs, self.post, wave)


class MultiPeriodDiscriminator(nn.Module):
    def __init__(self, periods: tuple[int, ...] = (2, 3, 5, 7, 11), width: float = 1.0):
        super().__init__()
        self.discriminators = nn.ModuleList([PeriodDiscriminator(p, width) for p in periods])

    def forward(self, wave: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        outputs = [d(wave) for d in self.discriminators]
        return [o[0] for o in outputs], [o[1] for o in outputs]


class MultiScaleDiscriminator(nn.Module):
    def __init__(self, width: float = 1.0):
        super().__init__()
        self.discriminators = nn.ModuleList(
            [ScaleDiscriminator(width, spectral=True), ScaleDiscriminator(width), ScaleDiscriminator(width)]
        )
        self.pool = nn.AvgPool1d(4, 2, padding=2)

    def forward(self, wave: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        logits, features = [], []
        for i, d in enumerate(self.discriminators):
            if i > 0:
                wave = self.pool(wave)
            out = d(wave)
            logits.append(out[0])
            features.append(out[1])
        return logits, features
