"""The prompt-ranking check: hand-computed ranks, and the CLI on a folder written by generate.py."""
from __future__ import annotations

import json

import pytest
import torch

import generate
from tests.conftest import write_tone
from evaluation import prompt_ranking


def test_ranks_on_a_hand_computed_case():
    text = torch.eye(3)  # prompts 0, 1, 2 along the axes
    audio = torch.tensor([[0.9, 0.1, 0.0],   # own prompt 0: first
                          [0.6, 0.5, 0.1],   # own prompt 1: second
                          [0.5, 0.4, 0.3]])  # own prompt 2: third
    result = prompt_ranking.prompt_ranking(audio, text, torch.tensor([0, 1, 2]))
    assert result == pytest.approx({"top1": 1 / 3, "mean_rank": 2.0, "chance": 1 / 3})


def test_cli_on_generated_clips(tiny_ldm_checkpoint, tmp_path, capsys):
    out = tmp_path / "gen"
    assert generate.main(["--ckpt", str(tiny_ldm_checkpoint), "--text", "a dog barks", "--text", "rain",
                          "--repeat", "2", "--out", str(out), "--steps", "2", "--duration", "0.64"]) == 0
    clap = tiny_ldm_checkpoint.parent / "clap.ckpt"
    report = tmp_path / "r.json"
    real = tmp_path / "real.jsonl"  # the generated clips again, plus one clip with another caption
    write_tone(tmp_path / "other.wav", 0.5)
    real.write_text((out / "generated.jsonl").read_text().replace('"path": "', f'"path": "{out}/') +
                    json.dumps({"id": "x", "path": str(tmp_path / "other.wav"), "captions": ["a cat"]}) + "\n")
    assert prompt_ranking.main(["--generated", str(out), "--clap-ckpt", str(clap), "--json", str(report),
                                "--reference", str(real)]) == 0
    printed = capsys.readouterr().out
    assert "4 clips, 2 prompts" in printed and "(chance 50%)" in printed and "reference: 4 real clips" in printed
    result = json.loads(report.read_text())
    assert result["clips"] == 4 and set(result["per_prompt"]) == {"a dog barks", "rain"}
    assert result["reference"]["top1"] == result["top1"]  # the same audio ranks the same
    assert prompt_ranking.main(["--generated", str(tmp_path / "none"), "--clap-ckpt", str(clap)]) == 2
