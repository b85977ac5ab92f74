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


# case 7: ranges are checked before the model loads, and the duration bound says why it is there
@pytest.mark.parametrize("args, message", [
    (["--duration", "1000"], "error: --duration must be more than 0 and at most 30 s, got 1000 s (the model learned "
                             "10.24 s clips"),
    (["--duration", "inf"], "error: --duration must be more than 0 and at most 30 s, got inf s"),
    (["--duration", "nan"], "error: --duration must be more than 0 and at most 30 s, got nan s"),
    (["--duration", "0"], "error: --duration must be more than 0"),
    (["--duration", "40", "--max-duration", "0"], "error: --max-duration must be a positive number"),
    (["--guidance", "-1"], "error: --guidance must be from 0 to 100, got -1.0"),
    (["--guidance", "nan"], "error: --guidance must be from 0 to 100, got nan"),
    (["--eta", "-0.5"], "error: --eta must be from 0 to 1, got -0.5"),
    (["--device", "gpu"], "error: --device 'gpu': not a device name"),
    (["--device", "cuda:99"], "error: --device cuda:99: "),
    (["--span", "nan-inf", "--mode", "inpaint", "--audio", "{wav}"], "START and END must be finite"),
    (["--cutoff", "0", "--mode", "sr", "--audio", "{wav}"], "error: --cutoff must be more than 0 and less than 8000"),
    (["--cutoff", "9000", "--mode", "sr", "--audio", "{wav}"], "error: --cutoff must be more than 0 and less than"),
    (["--cutoff", "3000"], "error: --cutoff is for --mode sr"),
    (["--mode", "transfer", "--audio", "{long}", "--max-duration", "1"], "the source must be more than 0 and at "
                                                                          "most 1 s, got 1.5 s"),
])
def test_bad_ranges_are_one_line_before_loading(tiny_ldm_checkpoint, tmp_path, capsys, no_model_load, args, message):
    from tests.conftest import write_tone

    wav, long = write_tone(tmp_path / "in.wav", 0.9, 16000), write_tone(tmp_path / "long.wav", 1.5, 16000)
    args = [a.format(wav=wav, long=long) for a in args]
    before = snapshot(tmp_path)
    assert run(tiny_ldm_checkpoint, tmp_path / "out", "--text", "a dog barks", *args) == 2
    err = one_error_line(capsys)
    assert err.startswith(message) or message in err, err
    assert snapshot(tmp_path) == before


def test_duration_message_says_the_cost(tiny_ldm_checkpoint, tmp_path, capsys, no_model_load):
    assert run(tiny_ldm_checkpoint, tmp_path / "out", "--text", "x", "--duration", "1000") == 2
    assert "~9,537x a 10.24 s clip; raise the bound with --max-duration)" in one_error_line(capsys)


def test_cuda_without_a_gpu(tiny_ldm_checkpoint, tmp_path, capsys, no_model_load, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert run(tiny_ldm_checkpoint, tmp_path / "out", "--text", "x", "--device", "cuda") == 2
    assert one_error_line(capsys) == "error: --device cuda: torch sees no CUDA GPU on this machine; use --device cpu"


def test_progress_starts_before_the_model_loads(tiny_ldm_checkpoint, tmp_path, capsys):
    assert run(tiny_ldm_checkpoint, tmp_path / "out", "--text", "x", "--max-duration", "40", "--duration", "0.5",
               "--device", "cpu") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"generate: loading {tiny_ldm_checkpoint} on cpu ..."
    assert lines[1] == "generate: 1 clip(s) x 1 candidate(s), 0.5 s each, 2 dpmsolver++ steps ..."


def test_app_requests_share_the_bounds():
    from audioldm.pipeline.jobs import Jobs, RequestError, Sampling

    jobs = Jobs(pipe=None, out_dir="unused", max_seconds=30.0)
    for bad in (float("inf"), float("nan"), 1000.0, 0.0):
        with pytest.raises(RequestError, match="duration must be more than 0 and at most 30 s"):
            jobs._check_duration(bad)
    with pytest.raises(RequestError, match="raise the bound with the app's --max-duration"):
        jobs._check_duration(1000.0)
    for field, value in (("eta", -0.5), ("guidance", float("nan")), ("eta", float("inf"))):
        with pytest.raises(RequestError, match=f"{field} must be from"):
            Sampling(**{field: value}).options()
