"""The prompt-ranking check: hand-computed ranks, and the CLI on a folder written by generate.py."""
from __future__ import annotations

import json

import pytest
import torch

import generate
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
    assert prompt_ranking.main(["--generated", str(out), "--clap-ckpt", str(clap), "--json", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "4 clips, 2 prompts" in printed and "(chance 50%)" in printed
    result = json.loads(report.read_text())
    assert result["clips"] == 4 and set(result["per_prompt"]) == {"a dog barks", "rain"}
    assert prompt_ranking.main(["--generated", str(tmp_path / "none"), "--clap-ckpt", str(clap)]) == 2
