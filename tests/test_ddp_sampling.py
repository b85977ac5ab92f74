"""Two CPU processes (gloo): each training clip goes to exactly one rank per epoch, the order
changes between epochs, and validation covers the validation set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_manifest_lines, write_tone

PROBE = Path(__file__).with_name("ddp_sampling_probe.py")


@pytest.mark.slow
def test_two_ranks_split_the_data(tmp_path):
    rows = []
    for i in range(20):
        write_tone(tmp_path / f"{i}.wav", 0.7, freq=300 + 10 * i)
        rows.append({"id": f"c{i}", "path": f"{i}.wav", "split": "val" if i < 4 else "train"})
    manifest = write_manifest_lines(tmp_path / "m.jsonl", rows)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(PROBE),
        str(manifest),
        str(tmp_path),
    ]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    train_ids = {f"c{i}" for i in range(4, 20)}
    for epoch in range(2):  # 16 clips, 2 ranks, batch 2: 4 steps per rank per epoch
        parts = [set(s["train"][epoch * 8 : (epoch + 1) * 8]) for s in seen]
        assert parts[0].isdisjoint(parts[1]) and parts[0] | parts[1] == train_ids
    assert seen[0]["train"][:8] != seen[0]["train"][8:]  # re-shuffled each epoch
    assert set(seen[0]["val"]) | set(seen[1]["val"]) == {"c0", "c1", "c2", "c3"}
