"""Load any checkpoint written by train.py for inference, with one call.

    vae = load_stage("runs/vae/version_0/checkpoints/last.ckpt", stage="vae", mel=MelConfig())

A checkpoint of the wrong stage, a file that is not one of ours, or mel settings that differ
from the caller's raise ``CheckpointError`` with one line naming the mismatch.
"""
from __future__ import annotations

import os
from dataclasses import asdict

import torch
from omegaconf import OmegaConf

from audioldm.audio.mel import MelConfig
from audioldm.config.loader import load_config_dict
from lightning_modules.base import StageModule
from lightning_modules.registry import module_class


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as asked; the message is one line."""


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The raw checkpoint dict; a missing, truncated or foreign file gives a ``CheckpointError``."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # truncated zip, not a torch file, ...
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(checkpoint, dict) or "config" not in checkpoint or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path}: not a checkpoint written by this project's train.py "
                              f"(no 'config' / 'state_dict' entries)")
    return checkpoint


def check_mel(path: str | os.PathLike, saved: dict, expected: MelConfig) -> None:
    """Raise if the checkpoint's mel settings differ from ``expected`` (naming each field)."""
    diffs = [f"{k}: checkpoint {saved.get(k)!r} vs config {v!r}" for k, v in asdict(expected).items()
             if saved.get(k) != v]
    if diffs:
        raise CheckpointError(f"{path}: mel settings differ from the config ({'; '.join(diffs)})")


def load_stage(path: str | os.PathLike, stage: str | None = None, mel: MelConfig | None = None,
               device: str | torch.device = "cpu") -> StageModule:
    """The stage's LightningModule with the checkpoint's weights, in eval mode on ``device``."""
    checkpoint = read_checkpoint(path)
    config = OmegaConf.create(checkpoint["config"])
    found = checkpoint.get("stage", config.get("stage"))
    if stage is not None and found != stage:
        raise CheckpointError(f"{path}: is a '{found}' checkpoint, expected '{stage}'")
    if mel is not None:
        check_mel(path, checkpoint["config"].get("audio", {}), mel)
    module = module_class(found)(load_config_dict(checkpoint["config"], source=str(path)))
    missing, unexpected = module.load_state_dict(checkpoint["state_dict"], strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not fit the '{found}' model "
                              f"(missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                              f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''})")
    return module.eval().to(device)
