"""Load any checkpoint written by train.py for inference, with one call.

    vae = load_stage("runs/vae/version_0/checkpoints/last.ckpt", stage="vae", mel=MelConfig())

A checkpoint of the wrong stage, a file that is not one of ours, or mel settings that differ
from the caller's raise ``CheckpointError`` with one line naming the mismatch.
"""

from __future__ import annotations

import os

import torch

from audioldm.audio.mel import MelConfig
from audioldm.checkpoint import CheckpointError, check_mel, checkpoint_stage, load_weights, read_checkpoint
from audioldm.config.loader import load_config_dict
from lightning_modules.stage_module import StageModule
from lightning_modules.stages import module_class

__all__ = ["CheckpointError", "check_mel", "load_stage", "read_checkpoint"]


def load_stage(
    path: str | os.PathLike, stage: str | None = None, mel: MelConfig | None = None, device: str | torch.device = "cpu"
) -> StageModule:
    """The stage's LightningModule with the checkpoint's weights, in eval mode on ``device``."""
    checkpoint = read_checkpoint(path)
    found = checkpoint_stage(path, checkpoint, stage)
    if mel is not None:
        check_mel(path, checkpoint["config"].get("audio", {}), mel)
    config = load_config_dict(checkpoint["config"], source=str(path))
    module = module_class(found).for_checkpoint(config, checkpoint)
    load_weights(module, checkpoint["state_dict"], f"{path} ('{found}' checkpoint)")
    return module.eval().to(device)
