"""Low-rank adapters (LoRA, Hu et al. 2021) on the latent-diffusion UNet, with peft: diffusers' ``add_adapter`` on
``UNet2DConditionModel`` (FiLM), peft's own injection on the cross-attention ``AudioLDM2UNet2DConditionModel``, which
has no ``add_adapter``; both inject the same peft layers, so everything after (scales, fusing, files) is one path.

An adapted linear layer computes W x + (alpha / rank) * scale * B A x with A [rank, in] and B [out, rank]; B starts
at zero, so a new adapter changes nothing. The base weights W stay frozen: only A and B train. Several adapters
may sit on one UNet under different names, each with its own scale; scale 0 gives the base output exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn as nn

from audioldm.constraints import INF, in_range

ATTENTION_PROJECTIONS = ["to_q", "to_k", "to_v", "to_out.0"]


@dataclass
class LoraConfig:
    """``model.lora``: null trains the whole UNet; set, only an adapter trains on a frozen base (``init_from``)."""

    rank: int = in_range(8, 1, 4096)
    alpha: Optional[float] = in_range(None, 0.0, INF)  # None: rank (scale alpha / rank = 1)
    dropout: float = in_range(0.0, 0.0, 1.0)  # on the adapter's input, in training
    # module names (or name endings) adapted: by default every attention projection; the FiLM UNet's condition acts
    # in the res blocks, so teaching it new sounds needs their convs too (conv1, conv2: the shipped configs)
    targets: list[str] = field(default_factory=lambda: list(ATTENTION_PROJECTIONS))
    # also adapt the condition pathway: the FiLM projection of the CLAP embedding (film_clap), or the key and value
    # projections of the text tokens in the cross-attention (crossattn_*)
    condition: bool = False


def target_modules(unet: nn.Module, config: LoraConfig) -> list[str]:
    """The module names peft adapts: ``config.targets`` (+ the condition pathway's projections)."""
    from diffusers.models.attention_processor import Attention

    from audioldm.models.unet import cross_attends

    names = list(config.targets)
    if config.condition and cross_attends(unet):  # the projections of the text tokens
        crossing = [n for n, m in unet.named_modules() if isinstance(m, Attention) and m.is_cross_attention]
        names += [f"{n}.{p}" for n in crossing for p in ("to_k", "to_v")]
    elif config.condition:  # the FiLM UNet's attn2 attends to the latent itself: the condition enters here
        names.append("class_embedding")
    return names


def add_lora(unet: nn.Module, config: LoraConfig, name: str = "default") -> None:
    """Inject a new adapter ``name`` (B = 0: the output is unchanged) and make its weights the only trainable ones."""
    from peft import LoraConfig as PeftLoraConfig

    peft_config = PeftLoraConfig(
        r=config.rank,
        lora_alpha=config.alpha if config.alpha is not None else config.rank,
        lora_dropout=config.dropout,
        target_modules=target_modules(unet, config),
    )
    unet.requires_grad_(False)
    try:
        inject(unet, peft_config, name)
    except ValueError as e:  # a target that names no module
        raise ValueError(f"model.lora.targets {list(config.targets)}: {str(e).splitlines()[0]}") from None
    for key, parameter in unet.named_parameters():
        parameter.requires_grad_(is_adapter_key(key, name))


def inject(unet: nn.Module, peft_config, name: str) -> None:
    """Adapter ``name`` with ``peft_config`` into ``unet``: diffusers' ``add_adapter`` where the class has it (it
    also registers the adapter for diffusers' own LoRA methods), else peft's ``inject_adapter_in_model``."""
    from peft import inject_adapter_in_model

    if hasattr(unet, "add_adapter"):
        unet.add_adapter(peft_config, adapter_name=name)
    else:
        inject_adapter_in_model(peft_config, unet, adapter_name=name)


def is_adapter_key(key: str, name: str) -> bool:
    """Whether a UNet parameter (or state-dict) name belongs to adapter ``name``."""
    return f".lora_A.{name}." in key or f".lora_B.{name}." in key


def adapter_state(unet: nn.Module, name: str = "default") -> dict[str, torch.Tensor]:
    """Adapter ``name``'s weights under peft's names without the adapter name (``...to_q.lora_A.weight``)."""
    from peft import get_peft_model_state_dict

    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(unet, adapter_name=name).items()}


def load_adapter_state(unet: nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    """Fill adapter ``name`` (injected with the same targets and rank) from ``adapter_state``'s layout; strict."""
    from peft import set_peft_model_state_dict

    result = set_peft_model_state_dict(unet, state, adapter_name=name)
    missing = [k for k in result.missing_keys if is_adapter_key(k, name)]
    unexpected = list(getattr(result, "unexpected_keys", []))
    if missing or unexpected:
        raise ValueError(f"the adapter's weights do not fit: missing {missing[:3]}, unexpected {unexpected[:3]}")


def set_scales(unet: nn.Module, scales: dict[str, float]) -> None:
    """Activate the adapters of ``scales`` (name -> scale) together, each at its scale; others are inactive."""
    from peft.tuners.lora import LoraLayer

    for module in unet.modules():
        if isinstance(module, LoraLayer):
            here = [n for n in scales if n in module.lora_A]
            module.set_adapter(here)
            for n in here:
                module.set_scale(n, scales[n])


def fuse(unet: nn.Module) -> None:
    """Merge the active adapters (at their scales) into the base weights: the same output, no adapter cost."""
    from peft.tuners.lora import LoraLayer

    for module in unet.modules():
        if isinstance(module, LoraLayer) and module.active_adapters:
            module.merge(adapter_names=list(module.active_adapters))


def remove_adapters(unet: nn.Module) -> None:
    """Drop every adapter layer, keeping the (possibly fused) base weights: a plain UNet again."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for parent in list(unet.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, BaseTunerLayer):
                setattr(parent, child_name, child.get_base_layer())


def trainable_parameters(module: nn.Module) -> int:
    """The number of parameters that train."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
