"""Bad input (issue 15): every command stops with one line naming the file or key, exits non-zero,
and leaves every input file byte-identical."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import train
from data import prepare
from tests.conftest import write_manifest_lines, write_tone

REPO = Path(__file__).resolve().parents[1]


def snapshot(folder: Path) -> dict[str, str]:
    """{relative path: sha1} of every file under ``folder``."""
    return {
        str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()  # progress bars may come before it
    errors = [line for line in err.replace("\r", "\n").splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and err.endswith(errors[0]) and "Traceback" not in err, err
    return errors[0]


# case 4: config ranges are checked before any work
@pytest.mark.parametrize(
    "override, key",
    [
        ("data.batch_size=0", "data.batch_size"),
        ("data.batch_size=-3", "data.batch_size"),
        ("trainer.max_steps=-5", "trainer.max_steps"),
        ("data.val_fraction=1.5", "data.val_fraction"),
        ("data.segment_seconds=0", "data.segment_seconds"),
        ("optim.lr=-1", "optim.lr"),
    ],
)
def test_config_range_names_key(tmp_path, capsys, override, key):
    manifest = write_manifest_lines(tmp_path / "m.jsonl", [{"id": "a", "path": "a.wav"}])
    before = snapshot(tmp_path)
    code = train.main(
        ["--config", str(REPO / "configs/demo/vae.yaml"), f"data.train_manifest={manifest}", override, "--print-config"]
    )
    assert code == 2
    err = one_error_line(capsys)
    assert f"{key}=" in err and "out of range" in err
    assert snapshot(tmp_path) == before


def test_config_ranges_accept_boundaries(tmp_path):
    from audioldm.config import load_config

    # max_steps -1 (epochs decide) needs the constant lr: the demo VAE's cosine ends at trainer.max_steps
    config = load_config(
        REPO / "configs/demo/vae.yaml",
        [
            "data.train_manifest=m.jsonl",
            "trainer.max_steps=-1",
            "data.val_fraction=0.0",
            "data.batch_size=1",
            "optim.decay=constant",
        ],
    )
    assert config.trainer.max_steps == -1 and config.data.batch_size == 1


# case 1: data.prepare never writes over what it reads, nor over a file that is not a manifest
def folder_dataset(root: Path) -> Path:
    audio = root / "audio"
    write_tone(audio / "a.wav", 1.0, 16000)
    write_tone(audio / "b.wav", 1.0, 16000, freq=500)
    (audio / "caps.csv").write_text("file_name,caption\na.wav,a tone\nb.wav,another tone\n", encoding="utf-8")
    return audio


@pytest.mark.parametrize(
    "out_name, message",
    [
        ("caps.csv", "is one of this command's inputs"),
        ("a.wav", "already exists and is not this command's earlier output"),
    ],
)
def test_prepare_refuses_to_overwrite(tmp_path, capsys, out_name, message):
    audio = folder_dataset(tmp_path)
    before = snapshot(tmp_path)
    out = audio / out_name
    args = ["folder", "--audio-dir", str(audio), "--captions-csv", str(audio / "caps.csv"), "--out", str(out)]
    assert prepare.main(args) == 2
    err = one_error_line(capsys)
    assert str(out) in err and message in err
    assert snapshot(tmp_path) == before
    if out_name == "caps.csv":  # an input stays protected even with --overwrite
        assert prepare.main(args + ["--overwrite"]) == 2
        assert snapshot(tmp_path) == before


def test_prepare_replaces_its_own_manifest(tmp_path, capsys):
    audio = folder_dataset(tmp_path)
    out = tmp_path / "m.jsonl"
    args = ["folder", "--audio-dir", str(audio), "--captions-csv", str(audio / "caps.csv"), "--out", str(out)]
    assert prepare.main(args) == 0
    assert prepare.main(args) == 0  # its own earlier output: replaced
    assert len(out.read_text().splitlines()) == 2


# case 2: evaluate.py fails when its metric cannot be computed, and counts only clips it scored
def eval_folders(root: Path, unreadable: int) -> tuple[Path, Path]:
    gen, ref = root / "gen", root / "ref"
    gen.mkdir(parents=True)
    for i, key in enumerate("abcde"):
        write_tone(ref / f"{key}.wav", 1.0, 16000, freq=300 + 40 * i)
        if i < unreadable:
            (gen / f"{key}.wav").write_bytes(b"RIFF\x00\x00not audio" * 8)
        else:
            write_tone(gen / f"{key}.wav", 1.0, 16000, freq=500 + 40 * i)
    return gen, ref


def evaluate_args(gen: Path, ref: Path, ckpt: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--generated",
        str(gen),
        "--reference",
        str(ref),
        "--backbone",
        "clap",
        "--clap-ckpt",
        str(ckpt.parent / "clap.ckpt"),
        "--out",
        str(out),
        *extra,
    ]


def test_evaluate_counts_only_scored_clips(tiny_ldm_checkpoint, tmp_path, capsys):
    import json

    import evaluate

    gen, ref = eval_folders(tmp_path / "in", unreadable=3)
    before = snapshot(tmp_path / "in")
    out = tmp_path / "eval"
    assert evaluate.main(evaluate_args(gen, ref, tiny_ldm_checkpoint, out)) == 0
    results = json.loads((out / "metrics.json").read_text())
    assert results["clips_generated"] == 2 and results["pairs"] == 2 and results["unreadable_generated"] == 3
    assert snapshot(tmp_path / "in") == before


def test_evaluate_fails_without_its_metric(tiny_ldm_checkpoint, tmp_path, capsys):
    import evaluate

    gen, ref = eval_folders(tmp_path / "in", unreadable=5)
    before = snapshot(tmp_path / "in")
    assert evaluate.main(evaluate_args(gen, ref, tiny_ldm_checkpoint, tmp_path / "eval")) == 2
    err = one_error_line(capsys)
    assert "FD_clap not computed" in err and "5 generated" in err and "unreadable" in err
    assert snapshot(tmp_path / "in") == before


# issue 25, cases 3, 7 and 10: evaluate.py never replaces a result with a failure, checks --out and --limit first
def test_a_failed_evaluate_rerun_keeps_the_earlier_results(tiny_ldm_checkpoint, tmp_path, capsys):
    import evaluate

    good, ref = eval_folders(tmp_path / "good", unreadable=0)
    bad, _ = eval_folders(tmp_path / "bad", unreadable=5)
    out = tmp_path / "eval"
    assert evaluate.main(evaluate_args(good, ref, tiny_ldm_checkpoint, out)) == 0
    before = snapshot(out)
    assert {"metrics.json", "metrics.md"} <= set(before) and any(k.startswith("tb/") for k in before)
    capsys.readouterr()
    assert evaluate.main(evaluate_args(bad, ref, tiny_ldm_checkpoint, out)) == 2  # refused before any scoring
    assert one_error_line(capsys) == (
        f"error: --out {out}: holds earlier results (metrics.json, metrics.md, tb); pass --overwrite to replace "
        f"them, or choose another folder"
    )
    assert evaluate.main(evaluate_args(bad, ref, tiny_ldm_checkpoint, out, "--overwrite")) == 2  # no metric
    err = one_error_line(capsys)
    assert "FD_clap not computed" in err and f"earlier results in {out} are kept" in err
    assert snapshot(out) == before  # the failure replaced nothing, and TensorBoard has no second event file
    assert evaluate.main(evaluate_args(good, ref, tiny_ldm_checkpoint, out, "--overwrite")) == 0
    after = snapshot(out)
    assert len([k for k in after if k.startswith("tb/")]) == 1 and not (out / "tb.tmp").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (("--limit", "0"), "error: --limit must be at least 1 (the first N reference clips), got 0"),
        (("--limit", "-1"), "error: --limit must be at least 1 (the first N reference clips), got -1"),
    ],
)
def test_evaluate_limit_below_one_is_refused(tiny_ldm_checkpoint, tmp_path, capsys, extra, message):
    import evaluate

    gen, ref = eval_folders(tmp_path / "in", unreadable=0)
    assert evaluate.main(evaluate_args(gen, ref, tiny_ldm_checkpoint, tmp_path / "eval", *extra)) == 2
    assert one_error_line(capsys) == message and not (tmp_path / "eval").exists()


def test_evaluate_out_that_is_a_file_is_refused_before_scoring(tiny_ldm_checkpoint, tmp_path, capsys, monkeypatch):
    import evaluate
    import evaluation.scorer

    gen, ref = eval_folders(tmp_path / "in", unreadable=0)
    out = tmp_path / "results"
    out.write_text("a user's file")
    monkeypatch.setattr(evaluation.scorer, "score", lambda *a, **k: pytest.fail("scored before --out was checked"))
    assert evaluate.main(evaluate_args(gen, ref, tiny_ldm_checkpoint, out)) == 2
    assert one_error_line(capsys) == f"error: --out {out}: is a file, not a folder; choose a folder to write into"
    assert out.read_text() == "a user's file"
