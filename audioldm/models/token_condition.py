"""Text tokens as one condition tensor: the cross-attention conditions (``model.condition: crossattn_*``).

A text encoder gives per-token states [B, L, W] and an attention mask [B, L] (1 = a real token, 0 = padding).
They travel packed as one tensor [B, L, W + 1], the mask in the last channel, always padded to the encoder's
``max_length``: everything that handles a FiLM condition [B, D] (classifier-free guidance's doubled batch,
condition dropout, candidates' repeats, caches) then handles tokens unchanged, since every condition of a model
has one shape. The UNet unpacks it; masked keys get no attention weight, so the padding length changes nothing
(the official code pads to the batch's longest caption, tested equal).
"""

from __future__ import annotations

import torch


def pack(states: torch.Tensor, mask: torch.Tensor, length: int | None = None) -> torch.Tensor:
    """states [B, L, W] + mask [B, L] -> [B, length, W + 1] (zero states, mask 0 past L; truncated to ``length``)."""
    packed = torch.cat([states, mask.to(states.dtype)[..., None]], dim=-1)
    if length is None or packed.shape[1] == length:
        return packed
    if packed.shape[1] > length:
        return packed[:, :length]
    return torch.nn.functional.pad(packed, (0, 0, 0, length - packed.shape[1]))


def unpack(condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, L, W + 1] -> (states [B, L, W], mask [B, L], 1 = attend)."""
    return condition[..., :-1], condition[..., -1]


def per_sample(flags: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    """flags [B] shaped to broadcast over ``condition`` [B, ...] (e.g. for ``torch.where`` on whole conditions)."""
    return flags.reshape(-1, *([1] * (condition.dim() - 1)))
