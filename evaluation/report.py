"""Writing an evaluation's results: JSON, a markdown table, TensorBoard scalars."""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from audioldm.safe_output import atomic_file, removed_on_error

RESULT_FILES = ("metrics.json", "metrics.md", "tb")  # what a finished evaluation leaves in its --out

# name in the results -> (table label, lower is better?)
COLUMNS = {
    "FAD": ("FAD (VGGish)", True),
    "FD": ("FD (PANNs)", True),
    "KL_softmax": ("KL softmax", True),
    "KL_sigmoid": ("KL sigmoid", True),
    "IS": ("IS", False),
    "FD_clap": ("FD (CLAP)", True),
    "CLAP_score": ("CLAP score", False),
}


def markdown_table(results: dict[str, Any]) -> str:
    """The metrics present in ``results`` as a two-row markdown table, with the set sizes below."""
    names = [n for n in COLUMNS if n in results]
    head = "| " + " | ".join(f"{COLUMNS[n][0]} {'↓' if COLUMNS[n][1] else '↑'}" for n in names) + " |"
    rule = "|" + "---|" * len(names)
    row = "| " + " | ".join(f"{results[n]:.3f}" for n in names) + " |"
    sizes = (
        f"{results['clips_generated']} generated, {results['clips_reference']} reference clips, "
        f"{results['pairs']} paired by name"
    )
    return "\n".join([head, rule, row, "", sizes])


def write_results(results: dict[str, Any], out_dir: str, notes: list[str]) -> str:
    """metrics.json, metrics.md and TensorBoard scalars (``eval/<metric>``, under ``tb/``) in ``out_dir``; returns
    the markdown. Each file is written whole under a temporary name and renamed, and ``tb/`` is replaced as a
    folder, so earlier results are either kept or wholly replaced."""
    os.makedirs(out_dir, exist_ok=True)
    text = markdown_table(results) + "".join(f"\n\n{note}" for note in notes) + "\n"
    tb, tmp = os.path.join(out_dir, "tb"), os.path.join(out_dir, "tb.tmp")
    with removed_on_error(tb, tmp):
        shutil.rmtree(tmp, ignore_errors=True)
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(tmp) as writer:
            for name in COLUMNS:
                if name in results:
                    writer.add_scalar(f"eval/{name}", results[name], 0)
    with atomic_file(os.path.join(out_dir, "metrics.json"), text=True) as f:
        json.dump({**results, "notes": notes}, f, indent=2)
    with atomic_file(os.path.join(out_dir, "metrics.md"), text=True) as f:
        f.write(text)
    with removed_on_error(tb, tmp):
        shutil.rmtree(tb, ignore_errors=True)
        os.replace(tmp, tb)
    return text
