"""Reference outputs of the ORIGINAL AudioLDM 2 networks (PyPI audioldm2 0.1.0) at tiny sizes (or the real one).

Run as ``python tests/reference/original_audioldm2_probe.py T5_FOLDER OUT.pt`` with T5_FOLDER written by
tests/t5_fixtures.write_tiny_t5. Optional flags change the UNet's size and input (the defaults are the tiny sizes
the tests use): ``--model-channels 128 --head-channels 32 --x-shape 1 8 256 16`` builds the official S-size UNet
over a real 10.24 s latent (bench/crossattn_t5_real_size.py). The package's ``__init__`` pulls in the whole
pipeline (and fetches checkpoints), so this script drops the repository from ``sys.path``, puts
``.refs/audioldm2-0.1.0`` first and registers a bare ``audioldm2`` package pointing there. The original files then
import normally:
``latent_diffusion/modules/diffusionmodules/openaimodel.py`` (UNetModel), ``.../modules/attention.py``
(SpatialTransformer, CrossAttention) and ``.../modules/encoders/modules.py`` (FlanT5HiddenState). The last
one imports CLAP, AudioMAE, a phoneme encoder and a sequence model that FlanT5HiddenState never uses: those
five modules (``STUBS``) are registered as empty stand-ins first; every class that runs is the original
file's code. OUT.pt (float32, CPU; ``torch.load(weights_only=True)`` reads it) holds:

- ``files``: the original files that were imported; ``stubs``: the stand-in module names.
- ``t5``: FlanT5HiddenState(text_encoder_name=T5_FOLDER) with the folder's weights loaded into ``.model``:
  ``state`` (its ``.model.state_dict()``), ``captions`` (tests/t5_fixtures.T5_CAPTIONS), ``input_ids``,
  ``states, mask = encode_text(captions)`` ([4, L, d_model], float [4, L], padded to the longest) and
  ``null_states, null_mask = get_unconditional_condition(max(2, B))`` (the encoded "" = [</s>], [2, 1, d_model]
  by default; B is the UNet input's batch, below).
- ``unet``: UNetModel in the shape of the official ``audioldm_16k_crossattn_t5`` config (extra self-attention
  transformer plus one T5 cross-attention transformer per attention level) at width 32 (``--model-channels``;
  head channels 8, ``--head-channels``; context_dim the T5's d_model), every parameter perturbed by
  N(0, 0.02^2): ``kwargs``, ``state`` (original key names), ``heads``, x [2, 8, 16, 16] (``--x-shape``; its
  batch B is at most 4, the caption count), t [B] (10 and 700 for B = 2),
  ``out`` = unet(x, t, context_list=[states[:B]], context_attn_mask_list=[mask[:B]]) and ``out_null`` with
  the first B rows of the null pair instead.
- ``checkpoint_state``: both in the official LatentDiffusion ``state_dict`` layout: the UNet under
  ``model.diffusion_model.`` (``self.model = DiffusionWrapper``, which holds it as ``diffusion_model``) and
  the T5 under ``cond_stage_models.0.model.`` (``instantiate_cond_stage`` appends each cond_stage_config
  entry to the ModuleList ``self.cond_stage_models``; crossattn_flan_t5 is the only one, index 0, and
  FlanT5HiddenState keeps the T5EncoderModel as ``self.model``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
REF = REPO / ".refs" / "audioldm2-0.1.0"
STUBS = {  # module -> names the encoders file imports from it (none is used by FlanT5HiddenState)
    "audioldm2.clap.open_clip": ["create_model"],
    "audioldm2.clap.training.data": ["get_audio_features"],
    "audioldm2.latent_diffusion.modules.audiomae.AudioMAE": ["Vanilla_AudioMAE"],
    "audioldm2.latent_diffusion.modules.phoneme_encoder.encoder": ["TextEncoder"],
    "audioldm2.audiomae_gen.sequence_input": ["Sequence2AudioMAE"],
}


def _isolate() -> None:
    """Put the original package first and make the repository unreachable."""
    if not (REF / "audioldm2" / "latent_diffusion" / "modules" / "diffusionmodules" / "openaimodel.py").is_file():
        sys.exit(f"original AudioLDM 2 code not found at {REF}: run `bash scripts/test.sh` (it installs it)")
    drop = {str(REPO), str(HERE)}

    def keep(entry: str) -> bool:
        return os.path.abspath(entry or os.getcwd()) not in drop

    sys.path[:] = [str(REF)] + [p for p in sys.path if keep(p)]
    for name in [m for m in sys.modules if m == "audioldm2" or m.startswith("audioldm2.")]:
        del sys.modules[name]
    package = types.ModuleType("audioldm2")
    package.__path__ = [str(REF / "audioldm2")]
    package.__file__ = str(REF / "audioldm2" / "__init__.py")
    sys.modules["audioldm2"] = package


_isolate()

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402


def _register_stubs() -> None:
    """Empty stand-ins for the heavy modules that encoders/modules.py imports but FlanT5HiddenState never uses."""

    class Unused(nn.Module):  # Sequence2AudioMAE is a base class there, so the stand-ins are classes
        def __init__(self, *args, **kwargs):
            raise RuntimeError("stand-in for an AudioLDM 2 module the probe does not load")

    for name, attrs in STUBS.items():
        module = types.ModuleType(name)
        for attr in attrs:
            setattr(module, attr, type(attr, (Unused,), {}))
        sys.modules[name] = module


def _captions() -> list[str]:
    spec = importlib.util.spec_from_file_location("t5_fixtures", REPO / "tests" / "t5_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.T5_CAPTIONS)


def _perturb(module: nn.Module, scale: float, seed: int) -> None:
    """Add N(0, scale^2) noise to every parameter (zero-initialised layers then matter)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * scale)


def probe_t5(folder: str, captions: list[str], null_batch: int = 2) -> tuple[dict, nn.Module]:
    from transformers import T5EncoderModel

    _register_stubs()
    from audioldm2.latent_diffusion.modules.encoders.modules import FlanT5HiddenState

    torch.manual_seed(0)
    t5 = FlanT5HiddenState(text_encoder_name=folder)  # tokenizer from the folder, randomly initialised T5
    t5.model.load_state_dict(T5EncoderModel.from_pretrained(folder).state_dict())  # the folder's weights
    states, mask = t5.encode_text(captions)
    null_states, null_mask = t5.get_unconditional_condition(null_batch)
    ids = t5.tokenizer(captions, max_length=128, padding=True, truncation=True, return_tensors="pt").input_ids
    result = {
        "state": {k: v.clone() for k, v in t5.model.state_dict().items()},
        "captions": captions,
        "input_ids": ids,
        "states": states,
        "mask": mask,
        "null_states": null_states,
        "null_mask": null_mask,
    }
    return result, t5


def probe_unet(
    t5: dict,
    seed: int,
    model_channels: int = 32,
    head_channels: int = 8,
    x_shape: tuple[int, int, int, int] = (2, 8, 16, 16),
) -> dict:
    from audioldm2.latent_diffusion.modules.diffusionmodules.openaimodel import UNetModel

    # audioldm2.utils.get_audioldm_crossattn_t5_config()'s unet_config at width model_channels (official 128;
    # the tests' 32 is the least GroupNorm's 32 groups allow) and num_head_channels head_channels (official 32)
    # with the T5's d_model as context_dim (official 1024); extra_sa_layer keeps its default (True).
    kwargs = dict(
        image_size=64,
        in_channels=8,
        out_channels=8,
        model_channels=model_channels,
        attention_resolutions=[8, 4, 2],
        num_res_blocks=2,
        channel_mult=[1, 2, 3, 5],
        num_head_channels=head_channels,
        use_spatial_transformer=True,
        transformer_depth=1,
        context_dim=[t5["states"].shape[-1]],
    )
    torch.manual_seed(seed)
    model = UNetModel(**kwargs).eval()
    _perturb(model, 0.02, seed)
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(*x_shape, generator=g)
    batch = x_shape[0]
    t = torch.tensor([10, 700, 300, 999][:batch])
    states, mask = t5["states"][:batch], t5["mask"][:batch]
    null_states, null_mask = t5["null_states"][:batch], t5["null_mask"][:batch]
    # as DiffusionWrapper calls it: diffusion_model(x, t, context_list=..., y=None, context_attn_mask_list=...)
    with torch.no_grad():
        out = model(x, t, context_list=[states], context_attn_mask_list=[mask])
        out_null = model(x, t, context_list=[null_states], context_attn_mask_list=[null_mask])
    heads = sorted({m.heads for m in model.modules() if type(m).__name__ == "CrossAttention"})
    return {
        "kwargs": kwargs,
        "state": model.state_dict(),
        "heads": heads,
        "x": x,
        "t": t,
        "out": out,
        "out_null": out_null,
    }


def main(
    folder: str,
    out: str,
    model_channels: int = 32,
    head_channels: int = 8,
    x_shape: tuple[int, int, int, int] = (2, 8, 16, 16),
) -> None:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    torch.set_flush_denormal(True)
    captions = _captions()
    if not 1 <= x_shape[0] <= len(captions):
        sys.exit(f"--x-shape: the batch must be 1 to {len(captions)} (the caption count), not {x_shape[0]}")
    t5, _ = probe_t5(folder, captions, null_batch=max(2, x_shape[0]))
    unet = probe_unet(t5, seed=0, model_channels=model_channels, head_channels=head_channels, x_shape=x_shape)
    checkpoint_state = {f"model.diffusion_model.{k}": v for k, v in unet["state"].items()}
    checkpoint_state.update({f"cond_stage_models.0.model.{k}": v for k, v in t5["state"].items()})
    files = sorted(
        str(m.__file__)
        for n, m in sys.modules.items()
        if (n == "audioldm2" or n.startswith("audioldm2.")) and n not in STUBS and n != "audioldm2"
    )
    result = {
        "files": files,
        "stubs": sorted(STUBS),
        "t5": t5,
        "unet": unet,
        "checkpoint_state": checkpoint_state,
    }
    torch.save(result, out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Reference outputs of the original AudioLDM 2 networks.")
    parser.add_argument("t5_folder", help="a T5 folder written by tests/t5_fixtures.write_tiny_t5")
    parser.add_argument("out", help="the .pt file to write")
    parser.add_argument("--model-channels", type=int, default=32, help="UNet width (official: 128)")
    parser.add_argument("--head-channels", type=int, default=8, help="UNet num_head_channels (official: 32)")
    parser.add_argument("--x-shape", type=int, nargs=4, default=[2, 8, 16, 16], metavar=("B", "C", "T", "F"))
    args = parser.parse_args()
    main(args.t5_folder, args.out, args.model_channels, args.head_channels, tuple(args.x_shape))
