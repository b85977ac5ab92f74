"""A tiny whole AudioLDM in the original ``.ckpt`` layout, from networks built by the original code: the
UNet ``model.diffusion_model.*`` and its ``model_ema.*``, the VAE ``first_stage_model.*``, HiFi-GAN
``first_stage_model.vocoder.*`` (tests/reference/original_audioldm_probe.py, the PyPI audioldm 0.1.1 code
in a subprocess) and LAION-CLAP ``cond_stage_model.model.*`` (tests/reference/laion_clap_reference.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / ".refs" / "audioldm-0.1.1"
HEAD_CHANNELS = 8  # the tiny original UNet's num_head_channels (not stored in the weights)
SCALE = 0.7


def run_original_probe(folder: Path) -> dict:
    """The probe's tiny original networks (UNet, its EMA, VAE, HiFi-GAN): kwargs, state dicts, inputs and
    outputs. Raises ``FileNotFoundError`` when the original code is not installed in .refs/."""
    if not (REFERENCE / "audioldm" / "latent_diffusion" / "openaimodel.py").is_file():
        raise FileNotFoundError(
            f"the original AudioLDM code (PyPI audioldm==0.1.1) is missing at {REFERENCE}: "
            f"run `bash scripts/test.sh`, which installs it there"
        )
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "reference.pt"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    probe = ROOT / "tests" / "reference" / "original_audioldm_probe.py"
    proc = subprocess.run(
        [sys.executable, str(probe), str(out)], cwd=folder, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"probe failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    result = torch.load(out, weights_only=True)
    assert result["files"] and all(f.startswith(str(REFERENCE)) for f in result["files"])  # the original code ran
    return result


def original_state(ref: dict, laion_state: dict) -> dict[str, torch.Tensor]:
    """The original LatentDiffusion's state dict of the probe's networks and a LAION-CLAP state."""
    state = {f"model.diffusion_model.{k}": v for k, v in ref["unet"]["state"].items()}
    # the EMA differs from the raw weights, as after training
    state.update(
        {f"model_ema.{k}": v + 0.01 if v.is_floating_point() and v.ndim else v for k, v in ref["ema"]["state"].items()}
    )
    state.update({f"first_stage_model.{k}": v for k, v in ref["vae"]["state"].items()})
    state.update({f"first_stage_model.vocoder.{k}": v for k, v in ref["vocoder"]["state"].items()})
    state.update({f"cond_stage_model.model.{k}": v for k, v in laion_state.items()})
    state["scale_factor"] = torch.tensor(SCALE)
    return state


def save_original_checkpoint(path: Path, state: dict[str, torch.Tensor]) -> Path:
    """As the original training code saves it (Lightning's ``state_dict`` plus loop counters)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "epoch": 3, "global_step": 100}, path)
    return path


def write_original_checkpoint(folder: Path) -> tuple[Path, Path]:
    """(the tiny original .ckpt, the RoBERTa tokenizer folder its CLAP needs), written under ``folder``."""
    from tests.reference.laion_clap_reference import build_laion_reference
    from tests.tokenizer_fixtures import write_tiny_roberta_tokenizer

    tokenizer = write_tiny_roberta_tokenizer(folder / "tokenizer")
    laion = build_laion_reference(tokenizer)
    state = original_state(run_original_probe(folder / "probe"), laion.state)
    return save_original_checkpoint(folder / "audioldm-tiny-full.ckpt", state), tokenizer
