"""Resuming a run needs the network shape it was trained with: a checkpoint of another shape stops with one line
naming the differing tensors and model settings, not a page of ``size mismatch``."""

from __future__ import annotations

from typing import Any

import torch

from audioldm.checkpoint import CheckpointError
from audioldm.config.loader import config_to_dict


def check_state_fits(module: torch.nn.Module, checkpoint: dict[str, Any], where: str) -> None:
    """Raise ``CheckpointError`` (one line) unless ``checkpoint["state_dict"]`` has exactly the module's
    tensor names and shapes; the message names a few of them and the ``model.*`` settings in which the
    checkpoint's config differs from the module's."""
    state, own = checkpoint.get("state_dict", {}), module.state_dict()
    shapes = [
        f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and hasattr(v, "shape") and tuple(v.shape) != tuple(own[k].shape)
    ]
    missing, unexpected = [k for k in own if k not in state], [k for k in state if k not in own]
    if not (shapes or missing or unexpected):
        return
    parts = [f"{len(shapes)} tensor(s) of another shape, checkpoint vs model: e.g. {shapes[0]}"] if shapes else []
    parts += [f"{len(missing)} missing, e.g. {missing[0]}"] if missing else []
    parts += [f"{len(unexpected)} unexpected, e.g. {unexpected[0]}"] if unexpected else []
    saved = _flat(checkpoint.get("config", {}).get("model") or {}, "model.")
    current = _flat(config_to_dict(module.config).get("model") or {}, "model.") if hasattr(module, "config") else {}
    settings = [
        f"{k}: checkpoint {saved.get(k)!r} vs config {current.get(k)!r}"
        for k in sorted(set(saved) | set(current))
        if saved.get(k) != current.get(k)
    ]
    hint = (
        f"; model settings that differ: {', '.join(settings[:3])}{', ...' if len(settings) > 3 else ''}"
        if settings
        else ""
    )
    raise CheckpointError(
        f"{where}: weights do not fit the model ({', '.join(parts)}){hint}; resuming needs "
        f"the network shape the checkpoint was trained with"
    )


def _flat(tree: dict, prefix: str) -> dict:
    out = {}
    for key, value in tree.items():
        out.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out
