"""Bad input to generate.py and the writers (issue 15 cases 6-8): one line naming the path or flag, exit
status 2, before the model loads where the input allows it; no partial files; earlier outputs kept."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import generate
from tests.test_bad_inputs import one_error_line, snapshot


def run(ckpt: Path, out: Path, *args: str) -> int:
    return generate.main(["--ckpt", str(ckpt), "--out", str(out), "--steps", "2", "--sampler", "dpmsolver++",
                          "--duration", "0.5", *args])


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if generate.py loads a model: its checks must come first."""
    from audioldm.pipeline.text_to_audio import TextToAudio

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the bad input was reported")

    monkeypatch.setattr(TextToAudio, "from_checkpoint", classmethod(refuse))


# case 6: --out is checked before the model loads; earlier outputs are not replaced silently
def test_out_is_a_file(tiny_ldm_checkpoint, tmp_path, capsys, no_model_load):
    out = tmp_path / "clips.wav"
    out.write_bytes(b"a user's file")
    before = snapshot(tmp_path)
    assert run(tiny_ldm_checkpoint, out, "--text", "a dog barks") == 2
    assert one_error_line(capsys) == f"error: --out {out}: is a file, not a folder; choose a folder to write into"
    assert snapshot(tmp_path) == before


def test_out_below_a_file(tiny_ldm_checkpoint, tmp_path, capsys, no_model_load):
    (tmp_path / "f").write_text("x")
    assert run(tiny_ldm_checkpoint, tmp_path / "f" / "out", "--text", "a dog barks") == 2
    assert "is a file, not a folder" in one_error_line(capsys)


def test_out_unwritable(tiny_ldm_checkpoint, tmp_path, capsys, no_model_load, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() == 0:  # root writes anywhere: simulate the permission bits
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real(p, mode))
    else:
        locked.chmod(0o500)
    try:
        assert run(tiny_ldm_checkpoint, locked / "out", "--text", "a dog barks") == 2
        assert one_error_line(capsys) == (f"error: --out {locked / 'out'}: cannot be written ({locked} is not a "
                                          f"writable folder)")
    finally:
        locked.chmod(0o700)


def test_rerun_refuses_then_overwrite_replaces(tiny_ldm_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(tiny_ldm_checkpoint, out, "--text", "a dog barks", "--text", "rain") == 0
    (out / "notes.txt").write_text("the user's own file")
    before = snapshot(out)
    capsys.readouterr()
    assert run(tiny_ldm_checkpoint, out, "--text", "an engine") == 2
    err = one_error_line(capsys)
    assert f"--out {out}: holds 6 earlier generate.py output file(s)" in err and "--overwrite" in err
    assert snapshot(out) == before
    assert run(tiny_ldm_checkpoint, out, "--text", "an engine", "--overwrite") == 0
    assert sorted(p.name for p in out.iterdir()) == ["000_an_engine.png", "000_an_engine.wav", "generate.json",
                                                     "generated.jsonl", "notes.txt"]
    assert (out / "notes.txt").read_text() == "the user's own file"


def test_other_files_in_out_are_fine(tiny_ldm_checkpoint, tmp_path):
    (tmp_path / "song.wav").write_bytes(b"not ours")
    assert run(tiny_ldm_checkpoint, tmp_path, "--text", "a dog barks") == 0
    assert (tmp_path / "song.wav").read_bytes() == b"not ours" and (tmp_path / "000_a_dog_barks.wav").is_file()
