"""VGGish (Hershey et al., 2017) as audioldm_eval uses it for FAD: torchvggish's PyTorch port,
no PCA post-processing and the final ReLU removed (``FrechetAudioDistance(use_pca=False,
use_activation=False)``).

The input pipeline is the TensorFlow reference's (``vggish_input.waveform_to_examples``) written in
torch: 25 ms periodic-Hann frames every 10 ms (complete frames only), |rfft| of length 512, 64 HTK
mel bands over 125-7500 Hz, log(mel + 0.01), and examples of 96 frames without overlap.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache

import torch
from torch import nn

from evaluation.backbones import load_state, read_weights, weights_path

VGGISH_FILE = "vggish-10086976.pth"
VGGISH_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"

SAMPLE_RATE = 16000
WINDOW, HOP, N_FFT = 400, 160, 512  # 25 ms, 10 ms at 16 kHz; the next power of two
N_MELS, FMIN, FMAX = 64, 125.0, 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96  # 0.96 s, examples do not overlap
EMBEDDING_DIM = 128


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    return 1127.0 * torch.log1p(hz / 700.0)


@lru_cache(maxsize=None)
def mel_matrix() -> torch.Tensor:
    """[N_FFT // 2 + 1, N_MELS] float64: triangles linear in HTK mel, DC row zero (the TF reference's)."""
    bins_mel = _hz_to_mel(torch.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1, dtype=torch.float64))
    edges = torch.linspace(
        math.log1p(FMIN / 700.0) * 1127.0, math.log1p(FMAX / 700.0) * 1127.0, N_MELS + 2, dtype=torch.float64
    )
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel[:, None] - lower) / (center - lower)
    falling = (upper - bins_mel[:, None]) / (upper - center)
    weights = torch.minimum(rising, falling).clamp(min=0.0)
    weights[0] = 0.0
    return weights


def waveform_to_examples(wave: torch.Tensor) -> torch.Tensor:
    """[S] mono at 16 kHz -> log-mel examples [N, 1, 96, 64] float32 (N = 0 below 0.975 s = 15600 samples)."""
    if wave.dim() != 1:
        raise ValueError(f"VGGish expects one mono waveform [S] at 16 kHz, got shape {list(wave.shape)}")
    wave = wave.to(torch.float64)
    n_frames = 1 + (wave.numel() - WINDOW) // HOP if wave.numel() >= WINDOW else 0
    n_examples = n_frames // EXAMPLE_FRAMES
    if n_examples == 0:
        return wave.new_zeros(0, 1, EXAMPLE_FRAMES, N_MELS, dtype=torch.float32)
    frames = wave[: (n_examples * EXAMPLE_FRAMES - 1) * HOP + WINDOW].unfold(0, WINDOW, HOP)  # [F, 400]
    window = torch.hann_window(WINDOW, periodic=True, dtype=torch.float64, device=wave.device)
    magnitude = torch.fft.rfft(frames * window, n=N_FFT).abs()  # [F, 257]
    log_mel = torch.log(magnitude @ mel_matrix().to(wave.device) + LOG_OFFSET)  # [F, 64]
    return log_mel.reshape(n_examples, 1, EXAMPLE_FRAMES, N_MELS).float()


def _features() -> nn.Sequential:
    """VGG-style conv stack; parameters at indices 0, 3, 6, 8, 11, 13 as in the official weights."""
    layers: list[nn.Module] = []
    channels = 1
    for out in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
        if out == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, out, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = out
    return nn.Sequential(*layers)


class VGGish(nn.Module):
    """``features`` (convs) + ``embeddings`` (3 linear layers), state-dict keys as torchvggish's.

    ``final_relu=False`` (FAD, audioldm_eval) drops the ReLU after the last linear layer.
    """

    def __init__(self, final_relu: bool = False):
        super().__init__()
        self.features = _features()
        head: list[nn.Module] = [
            nn.Linear(512 * 4 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, EMBEDDING_DIM),
        ]
        if final_relu:
            head.append(nn.ReLU(inplace=True))
        self.embeddings = nn.Sequential(*head)

    def forward(self, examples: torch.Tensor) -> torch.Tensor:
        """[N, 1, 96, 64] log-mel examples -> [N, 128]."""
        x = self.features(examples)  # [N, 512, 6, 4]
        x = x.permute(0, 2, 3, 1).flatten(1)  # TF's channels-last order before flattening
        return self.embeddings(x)

    @torch.no_grad()
    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        """[S] mono at 16 kHz -> one embedding per 0.96 s example [N, 128] ([0, 128] if shorter)."""
        weight = self.embeddings[0].weight
        examples = waveform_to_examples(wave).to(weight.device)
        if examples.shape[0] == 0:
            return weight.new_zeros(0, EMBEDDING_DIM)
        return self(examples.to(weight.dtype))


def load_vggish(weights_dir: str | os.PathLike, device: str | torch.device = "cpu") -> VGGish:
    """The FAD VGGish (no final ReLU) from the official ``vggish-10086976.pth`` in ``weights_dir``, in eval mode."""
    path = weights_path(weights_dir, VGGISH_FILE, "VGGish", VGGISH_URL)
    model = VGGish(final_relu=False)
    load_state(model, read_weights(path), str(path))
    return model.to(device).eval()
