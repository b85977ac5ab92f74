"""generate.py: every mode writes a wav and a mel PNG per output plus an index; bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf

import generate
from tests.conftest import write_tone


def run(ckpt: Path, out: Path, *args: str) -> int:
    return generate.main(["--ckpt", str(ckpt), "--out", str(out), "--steps", "2", "--sampler", "dpmsolver++", *args])


@pytest.mark.slow
def test_prompts_file_writes_wavs_images_and_a_manifest(tiny_ldm_checkpoint, tmp_path, capsys):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a dog barks\n\nrain on a roof\n")
    out = tmp_path / "out"
    assert (
        run(
            tiny_ldm_checkpoint,
            out,
            "--prompts",
            str(prompts),
            "--text",
            "an engine",
            "--duration",
            "0.5",
            "--candidates",
            "2",
        )
        == 0
    )
    rows = [json.loads(line) for line in (out / "generated.jsonl").read_text().splitlines()]
    assert [r["captions"] for r in rows] == [["an engine"], ["a dog barks"], ["rain on a roof"]]
    for row in rows:
        data, rate = sf.read(out / row["path"])
        assert rate == 16000 and data.shape == (8000,)
        assert (out / row["path"]).with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    index = json.loads((out / "generate.json").read_text())
    assert index["settings"]["candidates"] == 2 and all(o["clap_score"] is not None for o in index["outputs"])
    assert "wrote 3 clip(s)" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode,extra",
    [("transfer", ["--strength", "0.4"]), ("inpaint", ["--span", "0.2-0.5"]), ("sr", ["--cutoff", "3000"])],
)
def test_editing_modes(tiny_ldm_checkpoint, tmp_path, mode, extra):
    source = write_tone(tmp_path / "in.wav", 0.9, 22050)
    out = tmp_path / mode
    assert run(tiny_ldm_checkpoint, out, "--mode", mode, "--audio", str(source), "--text", "birdsong", *extra) == 0
    data, rate = sf.read(out / "000_birdsong.wav")
    assert rate == 16000 and data.shape == (14400,)  # the source's length at 16 kHz


@pytest.mark.slow
def test_low_rate_source_sets_the_cutoff(tiny_ldm_checkpoint, tmp_path):
    source = write_tone(tmp_path / "in8k.wav", 0.9, 8000)
    assert run(tiny_ldm_checkpoint, tmp_path / "sr", "--mode", "sr", "--audio", str(source), "--text", "x") == 0
    settings = json.loads((tmp_path / "sr" / "generate.json").read_text())["settings"]
    assert settings["cutoff"] is None  # taken from the file: 4 kHz


@pytest.mark.parametrize(
    "args,message",
    [
        (["--text", " "], "error: a prompt is empty"),
        (["--prompts", "missing.txt"], "error: --prompts: file not found: missing.txt"),
        (
            ["--mode", "inpaint", "--text", "x", "--span", "0.2-0.4"],
            "error: --mode inpaint needs a source clip (--audio)",
        ),
        (
            ["--mode", "inpaint", "--audio", "{wav}", "--text", "x", "--span", "0.5-3"],
            "error: --span 0.5-3 s is outside the clip (0-0.9 s) or empty",
        ),
        (["--mode", "inpaint", "--audio", "{wav}", "--text", "x", "--span", "a-b"], "must look like START-END"),
        (["--mode", "transfer", "--audio", "{bad}", "--text", "x"], "cannot open as audio"),
        (
            ["--mode", "transfer", "--audio", "nope.wav", "--text", "x"],
            "error: --audio nope.wav: cannot read it (file does not exist)",
        ),
        (
            ["--mode", "transfer", "--audio", "{wav}", "--text", "x", "--strength", "2"],
            "--strength must be from 0 to 1, got 2",
        ),
        (["--mode", "sr", "--audio", "{wav}", "--text", "x"], "say which band to keep with --cutoff"),
        (["--mode", "transfer", "--audio", "{wav}", "--text", "x", "--text", "y"], "takes exactly one --text"),
    ],
)
def test_bad_input_is_one_line(tiny_ldm_checkpoint, tmp_path, capsys, args, message):
    wav = write_tone(tmp_path / "in.wav", 0.9, 16000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    args = [a.format(wav=wav, bad=bad) for a in args]
    assert run(tiny_ldm_checkpoint, tmp_path / "out", *args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_missing_and_wrong_checkpoints(tiny_ldm_checkpoint, tmp_path, capsys):
    assert generate.main(["--ckpt", str(tmp_path / "none.ckpt"), "--text", "x", "--out", str(tmp_path)]) == 2
    assert "--ckpt: file not found" in capsys.readouterr().err
    vae = tiny_ldm_checkpoint.parent / "vae.ckpt"
    assert generate.main(["--ckpt", str(vae), "--text", "x", "--out", str(tmp_path)]) == 2
    assert "is a 'vae' checkpoint, expected 'ldm'" in capsys.readouterr().err
