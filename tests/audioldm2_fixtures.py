"""Tiny original AudioLDM 2 networks (tests/reference/original_audioldm2_probe.py, the PyPI audioldm2 0.1.0
code in a subprocess): the crossattn-T5 UNet ``model.diffusion_model.*`` and the FlanT5HiddenState text
encoder ``cond_stage_models.0.model.*`` over a tiny random T5 folder (tests/t5_fixtures.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from tests.t5_fixtures import write_tiny_t5

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / ".refs" / "audioldm2-0.1.0"


def run_audioldm2_probe(folder: Path) -> dict:
    """Write the tiny T5 to ``folder/"t5"`` and return the probe's OUT.pt dict: ``files``, ``stubs``, ``t5``,
    ``unet`` and ``checkpoint_state``. Raises ``FileNotFoundError`` when the original code is not in .refs/."""
    if not (REFERENCE / "audioldm2" / "latent_diffusion" / "modules" / "diffusionmodules" / "openaimodel.py").is_file():
        raise FileNotFoundError(
            f"the original AudioLDM 2 code (PyPI audioldm2==0.1.0) is missing at {REFERENCE}: "
            f"run `bash scripts/test.sh`, which installs it there"
        )
    folder.mkdir(parents=True, exist_ok=True)
    t5 = write_tiny_t5(folder / "t5")
    out = folder / "reference.pt"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    probe = ROOT / "tests" / "reference" / "original_audioldm2_probe.py"
    proc = subprocess.run(
        [sys.executable, str(probe), str(t5), str(out)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"probe failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    result = torch.load(out, weights_only=True)
    assert result["files"] and all(f.startswith(str(REFERENCE)) for f in result["files"])  # the original code ran
    return result
