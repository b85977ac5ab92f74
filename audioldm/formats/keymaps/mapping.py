"""What the original-layout converters share: prefix renaming tables, counting numbered blocks, and
mapping a state dict onto a network's expected keys with one-line errors in the source's key names."""

from __future__ import annotations

import re
from typing import Any, Callable

import torch

from audioldm.checkpoint import CheckpointError


def listing(keys: list[str], n: int = 5) -> str:
    """``"<count> [first n]..."`` for an error message."""
    return f"{len(keys)} {keys[:n]}{'...' if len(keys) > n else ''}"


def rename_prefix(key: str, table: dict[str, str]) -> str | None:
    """``key`` with its longest prefix in ``table`` replaced; None when no prefix matches."""
    parts = key.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:cut]) + "."
        if prefix in table:
            return table[prefix] + ".".join(parts[cut:])
    return None


def indices(state: dict, pattern: str) -> list[int]:
    """The sorted distinct integers captured by ``pattern``'s first group over the keys of ``state``."""
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for key in state if (m := regex.fullmatch(key))})


def expected_state(build: Callable[[], torch.nn.Module], where: str, config: Any) -> dict[str, torch.Tensor]:
    """The state dict (shapes only, on the meta device) of the network ``config`` describes."""
    try:
        with torch.device("meta"):
            return build().state_dict()
    except ValueError as e:  # e.g. channels not divisible by the norm groups
        raise CheckpointError(f"{where}: {config} cannot be built ({e})") from None


def map_keys(
    state: dict[str, torch.Tensor],
    expected: dict[str, torch.Tensor],
    to_ours: Callable[[str], str | None],
    to_source: Callable[[str], str],
    where: str,
    config: Any,
    form: str,
    adapt: Callable[[str, str, torch.Tensor], torch.Tensor] | None = None,
    hint: Callable[[list[str]], str] = lambda unexpected: "",
) -> dict[str, torch.Tensor]:
    """``state`` renamed by ``to_ours`` onto ``expected``'s keys (``adapt`` reshapes a tensor where the
    layouts differ). Missing or unexpected keys, then wrong shapes, raise ``CheckpointError`` naming the
    keys as the source calls them (``to_source``)."""
    converted, unexpected = {}, []
    for key, value in state.items():
        ours = to_ours(key)
        if ours is None or ours not in expected:
            unexpected.append(key)
            continue
        converted[ours] = adapt(key, ours, value) if adapt else value
    missing = [to_source(k) for k in expected if k not in converted]
    if missing or unexpected:
        raise CheckpointError(
            f"{where}: not in {form} (missing {listing(missing)}, unexpected {listing(unexpected)}){hint(unexpected)}"
        )
    wrong = [
        f"{to_source(k)}: {tuple(v.shape)} vs {tuple(expected[k].shape)}"
        for k, v in converted.items()
        if v.shape != expected[k].shape
    ]
    if wrong:
        raise CheckpointError(f"{where}: shapes do not fit the inferred {config} ({listing(wrong, 3)})")
    return converted


def map_by_table(
    state: dict[str, torch.Tensor],
    expected: dict[str, torch.Tensor],
    table: dict[str, str],
    where: str,
    config: Any,
    form: str,
    adapt: Callable[[str, str, torch.Tensor], torch.Tensor] | None = None,
    hint: Callable[[list[str]], str] = lambda unexpected: "",
) -> dict[str, torch.Tensor]:
    """``map_keys`` with the source -> ours prefix renames of ``table`` (its inverse names the missing keys)."""
    inverse = {ours: source for source, ours in table.items()}
    return map_keys(
        state,
        expected,
        lambda k: rename_prefix(k, table),
        lambda k: rename_prefix(k, inverse) or k,
        where,
        config,
        form,
        adapt,
        hint,
    )
