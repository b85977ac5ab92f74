"""Reference outputs of the ORIGINAL AudioLDM networks (PyPI audioldm 0.1.1) at tiny sizes.

Run as ``python tests/reference/original_audioldm_probe.py OUT.pt``. The original package is also
called ``audioldm``, so this script drops the repository from ``sys.path``, puts
``.refs/audioldm-0.1.1`` first, and registers a bare ``audioldm`` package pointing there (its
``__init__`` pulls in the whole text-to-audio pipeline, which the networks do not need).

OUT.pt holds one dict per network: the original constructor kwargs, the state dict under the
original key names (random init plus noise on every parameter, so zero-initialised output
layers are not zero), fixed inputs and the original outputs (float32, CPU):

- ``unet`` / ``unet_h16``: UNetModel in AudioLDM's form (FiLM concat, spatial transformer, no
  context) with 8 / 16 channels per head; x [2, 8, 16, 16], t [2], y [2, 512] -> eps
  [2, 8, 16, 16]; ``ema``: LitEma over a wrapper holding the UNet as ``diffusion_model``.
- ``vae``: AutoencoderKL; z [2, 8, 4, 4] -> decoded [2, 1, 16, 16]; mel -> posterior mean.
- ``vocoder`` (AudioLDM's 16 kHz layout, thin) / ``vocoder_small`` (other rates and kernels):
  HiFi-GAN Generator; mel [2, 64, T] -> wave [2, 1, T * prod(rates)]; ``state_wn`` is the
  weight-norm state dict (weight_g / weight_v), ``state`` the one after remove_weight_norm.
"""

from __future__ import annotations

import copy
import os
import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
REF = REPO / ".refs" / "audioldm-0.1.1"


def _isolate() -> None:
    """Put the original package first and make the repository's ``audioldm`` unreachable."""
    if not (REF / "audioldm" / "latent_diffusion" / "openaimodel.py").is_file():
        sys.exit(f"original AudioLDM code not found at {REF}: run `bash scripts/test.sh` (it installs it)")
    drop = {str(REPO), str(HERE)}

    def keep(entry: str) -> bool:
        path = os.path.abspath(entry or os.getcwd())
        return path not in drop

    sys.path[:] = [str(REF)] + [p for p in sys.path if keep(p)]
    for name in [m for m in sys.modules if m == "audioldm" or m.startswith("audioldm.")]:
        del sys.modules[name]
    package = types.ModuleType("audioldm")
    package.__path__ = [str(REF / "audioldm")]
    package.__file__ = str(REF / "audioldm" / "__init__.py")
    sys.modules["audioldm"] = package


_isolate()

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402


def _perturb(module: nn.Module, scale: float, seed: int) -> None:
    """Add N(0, scale^2) noise to every parameter (zero-initialised layers then matter)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * scale)


def _unet_kwargs(head_channels: int) -> dict:
    # AudioLDM's settings (audioldm.utils.default_audioldm_config) at a tiny width.
    return dict(
        image_size=16,
        in_channels=8,
        out_channels=8,
        model_channels=32,
        attention_resolutions=[8, 4, 2],
        num_res_blocks=2,
        channel_mult=[1, 2, 3, 5],
        num_head_channels=head_channels,
        use_spatial_transformer=True,
        extra_film_condition_dim=512,
        extra_film_use_concat=True,
    )


def probe_unet(head_channels: int, seed: int) -> dict:
    from audioldm.latent_diffusion.openaimodel import UNetModel

    torch.manual_seed(seed)
    kwargs = _unet_kwargs(head_channels)
    model = UNetModel(**kwargs).eval()
    _perturb(model, 0.05, seed)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(2, 8, 16, 16, generator=g)
    t = torch.tensor([10, 987])
    y = torch.randn(2, 512, generator=g)
    with torch.no_grad():
        # DiffusionWrapper with conditioning_key "film": diffusion_model(x, t, y=c.squeeze(1))
        eps = model(x, timesteps=t, context=None, y=y)
    heads = sorted({m.n_heads for m in model.modules() if type(m).__name__ == "CrossAttention"})
    return {
        "kwargs": kwargs,
        "state": model.state_dict(),
        "x": x,
        "t": t,
        "y": y,
        "eps": eps,
        "heads": heads,
        "_model": model,
    }


def probe_ema(unet: nn.Module) -> dict:
    from audioldm.latent_diffusion.ema import LitEma

    wrapper = nn.Module()  # LatentDiffusion.model (DiffusionWrapper) holds the UNet as diffusion_model
    wrapper.diffusion_model = unet
    return {"state": LitEma(wrapper).state_dict()}


def probe_vae(seed: int) -> dict:
    import audioldm.variational_autoencoder.autoencoder as autoencoder

    # AutoencoderKL.__init__ builds the full 16 kHz vocoder; it plays no part in encode/decode.
    autoencoder.get_vocoder = lambda config, device: None
    torch.manual_seed(seed)
    ddconfig = dict(
        double_z=True,
        z_channels=8,
        resolution=16,
        downsample_time=False,
        in_channels=1,
        out_ch=1,
        ch=32,
        ch_mult=[1, 2, 2],
        num_res_blocks=2,
        attn_resolutions=[],
        dropout=0.0,
    )
    kwargs = {"ddconfig": ddconfig, "embed_dim": 8, "subband": 1, "image_key": "fbank"}
    model = autoencoder.AutoencoderKL(**kwargs).eval()
    _perturb(model, 0.05, seed)
    g = torch.Generator().manual_seed(seed + 1)
    z = torch.randn(2, 8, 4, 4, generator=g)
    mel = torch.randn(2, 1, 16, 16, generator=g)
    with torch.no_grad():
        decoded = model.decode(z)
        mean = model.encode(mel).mean
    return {"kwargs": kwargs, "state": model.state_dict(), "z": z, "decoded": decoded, "mel": mel, "mean": mean}


def probe_vocoder(h: dict, frames: int, seed: int) -> dict:
    from audioldm.hifigan import AttrDict
    from audioldm.hifigan.models import Generator

    torch.manual_seed(seed)
    model = Generator(AttrDict(h)).eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight_g"):  # rescale the per-channel norms by up to ~+-20%
                p.mul_(1 + 0.1 * torch.randn(p.shape, generator=generator))
            else:
                p.add_(torch.randn(p.shape, generator=generator) * 0.05)
    mel = torch.randn(2, h["num_mels"], frames, generator=torch.Generator().manual_seed(seed + 1))
    state_wn = copy.deepcopy(model.state_dict())
    with torch.no_grad():
        wave_wn = model(mel)
        model.remove_weight_norm()  # what AudioLDM's get_vocoder does before the .ckpt is written
        wave = model(mel)
    return {
        "kwargs": h,
        "state": model.state_dict(),
        "state_wn": state_wn,
        "mel": mel,
        "wave": wave,
        "wave_wn": wave_wn,
    }


def main(out: str) -> None:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    torch.set_flush_denormal(True)
    unet = probe_unet(8, seed=0)
    ema = probe_ema(unet.pop("_model"))
    unet_h16 = probe_unet(16, seed=1)
    unet_h16.pop("_model")
    audioldm_16k = dict(
        resblock="1",
        upsample_rates=[5, 4, 2, 2, 2],
        upsample_kernel_sizes=[16, 16, 8, 4, 4],
        upsample_initial_channel=64,
        resblock_kernel_sizes=[3, 7, 11],
        resblock_dilation_sizes=[[1, 3, 5]] * 3,
        num_mels=64,
    )
    small = dict(
        resblock="1",
        upsample_rates=[4, 3],
        upsample_kernel_sizes=[8, 7],
        upsample_initial_channel=32,
        resblock_kernel_sizes=[3, 5],
        resblock_dilation_sizes=[[1, 2, 4], [2, 3, 1]],
        num_mels=64,
    )
    result = {
        "unet": unet,
        "unet_h16": unet_h16,
        "ema": ema,
        "vae": probe_vae(seed=2),
        "vocoder": probe_vocoder(audioldm_16k, frames=6, seed=3),
        "vocoder_small": probe_vocoder(small, frames=7, seed=4),
        "files": sorted(
            str(getattr(m, "__file__", ""))
            for n, m in sys.modules.items()
            if n == "audioldm" or n.startswith("audioldm.")
        ),
    }
    torch.save(result, out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/reference/original_audioldm_probe.py OUT.pt")
    main(sys.argv[1])
