"""LoRA adapters on a ``LatentDiffusion``, in the one assembly path: a new adapter for training (``model.lora``),
and adapter files attached for generation (``--lora A.safetensors[:scale]``, several stacked), optionally fused.

An adapter is tied to the base UNet weights it trained on: their fingerprint is in its JSON, and an adapter is
refused on a base with another (e.g. the official weights' raw set instead of their EMA, or a distilled lcm
student of the base) unless ``force``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from typing import Any

from audioldm.checkpoint import CheckpointError, fingerprint
from audioldm.formats.adapter_files import read_adapter
from audioldm.models.latent_diffusion import LatentDiffusion
from audioldm.models.lora import (
    LoraConfig,
    add_lora,
    fuse,
    inject,
    load_adapter_state,
    remove_adapters,
    set_scales,
    target_modules,
)

log = logging.getLogger(__name__)
TRAINED = "default"  # the name of the adapter a model.lora run trains


def peft_config_dict(model: LatentDiffusion, config: LoraConfig) -> dict[str, Any]:
    """The peft ``LoraConfig`` of ``config`` on ``model``'s UNet as plain JSON (what diffusers reads)."""
    from peft import LoraConfig as PeftLoraConfig

    peft = PeftLoraConfig(
        r=config.rank,
        lora_alpha=config.alpha if config.alpha is not None else config.rank,
        lora_dropout=config.dropout,
        target_modules=target_modules(model.unet, config),
    )
    plain = {k: sorted(v) if isinstance(v, set) else v for k, v in peft.to_dict().items()}
    return json.loads(json.dumps(plain, default=str))  # enums as their values: plain types in checkpoints


def start_adapter(model: LatentDiffusion, config: LoraConfig, source: str) -> dict[str, Any]:
    """Freeze ``model``'s UNet and inject a new adapter to train on it; returns the description its files carry
    (the base's fingerprint, the adapter's shape)."""
    if model.unet_ema is not None:
        raise CheckpointError("a model.lora run trains an adapter on one base weight set: build it without an EMA")
    base = {"fingerprint": fingerprint(model.unet), "source": str(source), "condition": model.condition}
    peft_config = peft_config_dict(model, config)
    add_lora(model.unet, config, TRAINED)
    return {"kind": "ldm", "base": base, "lora": asdict(config), "peft_config": peft_config}


def attach_adapters(
    model: LatentDiffusion, adapters: list[tuple[str, float]], fused: bool = False, force: bool = False
) -> None:
    """Attach the adapter files ``adapters`` ((path, scale) each) to ``model``'s UNet, active together at their
    scales; ``fused``: merged into the base weights (faster sampling; the adapters cannot be rescaled after)."""
    if not adapters:
        return
    from peft import LoraConfig as PeftLoraConfig

    base = fingerprint(model.unet)
    scales = {}
    for i, (path, scale) in enumerate(adapters):
        state, meta = read_adapter(path)
        trained_on = meta.get("base", {})
        if trained_on.get("fingerprint") != base:
            message = (
                f"{path}: this adapter was trained on another base UNet (fingerprint {trained_on.get('fingerprint')} "
                f"of {trained_on.get('source')}; this checkpoint's is {base})"
            )
            if not force:
                raise CheckpointError(message + ": give the base it was trained on, or --force-lora to apply it anyway")
            log.warning("%s; applied anyway (--force-lora)", message)
        name = f"adapter{i}"
        known = PeftLoraConfig().to_dict()
        settings = {k: v for k, v in meta["peft_config"].items() if k in known and k not in ("peft_type", "task_type")}
        try:
            inject(model.unet, PeftLoraConfig(**settings), name)
            load_adapter_state(model.unet, state, name)
        except ValueError as e:
            raise CheckpointError(f"{path}: does not fit this UNet ({str(e).splitlines()[0]})") from None
        scales[name] = float(scale)
        if meta.get("kind") == "lcm":  # LCM-LoRA: the model becomes a few-step (lcm sampler) generator
            model.consistency_adapter = True
    set_scales(model.unet, scales)
    model.unet.requires_grad_(False)
    if fused:
        fuse(model.unet)
        remove_adapters(model.unet)


def parse_adapter(text: str) -> tuple[str, float]:
    """``PATH[:SCALE]`` -> (path, scale); the scale defaults to 1. Raises ValueError naming the argument."""
    path, _, scale = text.rpartition(":") if ":" in text and not os.path.exists(text) else (text, "", "1")
    try:
        value = float(scale)
    except ValueError:
        raise ValueError(f"--lora {text}: the scale after ':' must be a number, got {scale!r}") from None
    if not path:
        raise ValueError(f"--lora {text}: no adapter file before ':'")
    return path, value
