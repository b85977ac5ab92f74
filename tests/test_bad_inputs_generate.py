"""Bad input to generate.py and the writers (issue 15 cases 6-8): one line naming the path or flag, exit
status 2, before the model loads where the input allows it; no partial files; earlier outputs kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import generate
from tests.test_bad_inputs import one_error_line, snapshot


def run(ckpt: Path, out: Path, *args: str) -> int:
    return generate.main(
        ["--ckpt", str(ckpt), "--out", str(out), "--steps", "2", "--sampler", "dpmsolver++", "--duration", "0.5", *args]
    )


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
        assert one_error_line(capsys) == (
            f"error: --out {locked / 'out'}: cannot be written ({locked} is not a writable folder)"
        )
    finally:
        locked.chmod(0o700)


@pytest.mark.slow
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
    assert sorted(p.name for p in out.iterdir()) == [
        "000_an_engine.png",
        "000_an_engine.wav",
        "generate.json",
        "generated.jsonl",
        "notes.txt",
    ]
    assert (out / "notes.txt").read_text() == "the user's own file"


@pytest.mark.slow
def test_other_files_in_out_are_fine(tiny_ldm_checkpoint, tmp_path):
    (tmp_path / "song.wav").write_bytes(b"not ours")
    assert run(tiny_ldm_checkpoint, tmp_path, "--text", "a dog barks") == 0
    assert (tmp_path / "song.wav").read_bytes() == b"not ours" and (tmp_path / "000_a_dog_barks.wav").is_file()


# case 7: ranges are checked before the model loads, and the duration bound says why it is there
@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--duration", "1000"],
            "error: --duration must be more than 0 and at most 30 s, got 1000 s (the model learned 10.24 s clips",
        ),
        (["--duration", "inf"], "error: --duration must be more than 0 and at most 30 s, got inf s"),
        (["--duration", "nan"], "error: --duration must be more than 0 and at most 30 s, got nan s"),
        (["--duration", "0"], "error: --duration must be more than 0"),
        (["--duration", "40", "--max-duration", "0"], "error: --max-duration must be a positive number"),
        (["--guidance", "-1"], "error: --guidance must be from 0 to 100, got -1"),
        (["--steps", "100000", "--sampler", "dpmsolver++"], "error: --steps must be a whole number from 1 to 1000"),
        (["--seed", str(2**64 - 1), "--repeat", "2"], "error: --seed must be a whole number from 0 to 4294967295"),
        (["--guidance", "nan"], "error: --guidance must be from 0 to 100, got nan"),
        (["--eta", "-0.5"], "error: --eta must be from 0 to 1, got -0.5"),
        (["--device", "gpu"], "error: --device 'gpu': not a device name"),
        (["--device", "cuda:99"], "error: --device cuda:99: "),
        (["--span", "nan-inf", "--mode", "inpaint", "--audio", "{wav}"], "START and END must be finite"),
        (
            ["--cutoff", "0", "--mode", "sr", "--audio", "{wav}"],
            "error: --cutoff must be more than 0 and less than 8000",
        ),
        (["--cutoff", "9000", "--mode", "sr", "--audio", "{wav}"], "error: --cutoff must be more than 0 and less than"),
        (["--cutoff", "3000"], "error: --cutoff is for --mode sr"),
        (
            ["--mode", "transfer", "--audio", "{long}", "--max-duration", "1"],
            "the source must be more than 0 and at most 1 s, got 1.5 s",
        ),
    ],
)
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


@pytest.mark.slow
def test_progress_starts_before_the_model_loads(tiny_ldm_checkpoint, tmp_path, capsys):
    assert (
        run(
            tiny_ldm_checkpoint,
            tmp_path / "out",
            "--text",
            "x",
            "--max-duration",
            "40",
            "--duration",
            "0.5",
            "--device",
            "cpu",
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"generate: loading {tiny_ldm_checkpoint} on cpu ..."
    assert lines[1] == "generate: 1 clip(s) x 1 candidate(s), 0.5 s each, 2 dpmsolver++ steps ..."


# case 8: a full disk or an unwritable path is one line naming the path and the cause; no temporary
# file is left and a finished file is never touched
class FullDisk:
    """A file that takes ``room`` bytes (or characters) and then fails as a full disk does."""

    def __init__(self, f, room: int, code: int):
        self.f, self.room, self.code, self.written = f, room, code, 0

    def write(self, data):
        if self.written + len(data) > self.room:
            self.f.write(data[: self.room - self.written])  # a partial temporary file, as on a real disk
            self.written = self.room
            raise OSError(self.code, os.strerror(self.code))
        self.written += len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)


@pytest.fixture
def failing_writes(monkeypatch):
    """``fail(match, room=64, code=ENOSPC)``: writes through ``audioldm.safe_output`` to a temporary file
    whose path contains ``match`` fail after ``room`` bytes; EACCES/EROFS fail when the file is opened."""
    import builtins
    import errno

    from audioldm import safe_output

    def fail(match: str, room: int = 64, code: int = errno.ENOSPC):
        def opener(path, mode="r", *args, **kwargs):
            if match not in str(path) or "w" not in mode:
                return builtins.open(path, mode, *args, **kwargs)
            if code in (errno.EACCES, errno.EROFS):
                raise OSError(code, os.strerror(code), str(path))
            return FullDisk(builtins.open(path, mode, *args, **kwargs), room, code)

        monkeypatch.setattr(safe_output, "open", opener, raising=False)

    return fail


def no_temporaries(folder: Path) -> list[str]:
    return [str(p) for p in folder.rglob("*") if ".tmp" in p.name or p.name.endswith(".partial")]


@pytest.mark.parametrize(
    "code, cause",
    [
        (28, "no space left on the device"),
        (122, "disk quota exceeded"),
        (13, "permission denied"),
        (30, "read-only file system"),
    ],
)
def test_atomic_file_keeps_the_finished_file(tmp_path, failing_writes, code, cause):
    import torch

    from audioldm.safe_output import OutputError, atomic_file

    target = tmp_path / "last.ckpt"
    target.write_bytes(b"the finished checkpoint")
    failing_writes("last.ckpt", code=code)
    with pytest.raises(OutputError) as error:  # torch.save turns the write error into a RuntimeError: undone
        with atomic_file(target) as f:
            torch.save({"w": torch.zeros(10000)}, f)
    assert str(error.value) == f"{target}: cannot write ({cause})"
    assert target.read_bytes() == b"the finished checkpoint" and no_temporaries(tmp_path) == []


def test_checkpoint_io_disk_full(tmp_path, failing_writes):
    import torch

    from audioldm.safe_output import OutputError
    from lightning_modules.checkpoint_io import AtomicCheckpointIO

    failing_writes("step=2.ckpt")
    with pytest.raises(OutputError, match=r"step=2.ckpt: cannot write \(no space left on the device\)$"):
        AtomicCheckpointIO().save_checkpoint({"state_dict": {"w": torch.zeros(10000)}}, tmp_path / "step=2.ckpt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_generate_disk_full_keeps_earlier_outputs(tiny_ldm_checkpoint, tmp_path, capsys, failing_writes):
    out = tmp_path / "out"
    assert run(tiny_ldm_checkpoint, out, "--text", "a dog barks") == 0
    before = snapshot(out)
    capsys.readouterr()
    failing_writes("000_a_dog_barks.wav")
    assert run(tiny_ldm_checkpoint, out, "--text", "a dog barks", "--seed", "1", "--overwrite") == 2
    assert one_error_line(capsys) == (
        f"error: {out / '000_a_dog_barks.wav'}: cannot write (no space left on the device)"
    )
    assert snapshot(out) == before and no_temporaries(out) == []


@pytest.mark.slow
def test_generate_index_unwritable(tiny_ldm_checkpoint, tmp_path, capsys, failing_writes):
    failing_writes("generate.json", code=13)
    assert run(tiny_ldm_checkpoint, tmp_path / "out", "--text", "x") == 2
    assert one_error_line(capsys) == f"error: {tmp_path / 'out' / 'generate.json'}: cannot write (permission denied)"
    assert no_temporaries(tmp_path) == []


def test_prepare_disk_full_keeps_inputs_and_the_earlier_manifest(tmp_path, capsys, failing_writes):
    from data import prepare
    from tests.test_bad_inputs import folder_dataset

    audio = folder_dataset(tmp_path)
    out = tmp_path / "m.jsonl"
    args = ["folder", "--audio-dir", str(audio), "--captions-csv", str(audio / "caps.csv"), "--out", str(out)]
    assert prepare.main(args) == 0
    before = snapshot(tmp_path)
    capsys.readouterr()
    failing_writes("m.jsonl.tmp", room=10)
    assert prepare.main(args) == 2
    assert one_error_line(capsys) == f"error: {out}: cannot write (no space left on the device)"
    assert snapshot(tmp_path) == before and no_temporaries(tmp_path) == []


def test_shard_writer_disk_full_removes_the_partial_folder(tmp_path, capsys, monkeypatch):
    import errno

    import webdataset as wds

    from data import shard_writer
    from tests.conftest import write_manifest_lines
    from tests.test_bad_inputs import folder_dataset

    audio = folder_dataset(tmp_path)
    manifest = write_manifest_lines(
        tmp_path / "m.jsonl", [{"id": n, "path": str(audio / f"{n}.wav"), "captions": ["a tone"]} for n in ("a", "b")]
    )
    real = wds.ShardWriter.write
    calls = []

    def write(self, sample):  # the second sample finds the disk full, half-way into the tar
        calls.append(1)
        real(self, sample)
        if len(calls) == 2:
            assert list((tmp_path / "shards.partial").glob("shard-*.tar"))  # a partial shard is on disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(wds.ShardWriter, "write", write)
    before = snapshot(tmp_path)
    out = tmp_path / "shards"
    assert shard_writer.main(["--manifest", str(manifest), "--out", str(out)]) == 2
    assert one_error_line(capsys) == f"error: {out}: cannot write (no space left on the device)"
    assert not out.exists() and no_temporaries(tmp_path) == [] and snapshot(tmp_path) == before


def test_tensor_store_disk_full_keeps_earlier_entries(tmp_path, failing_writes):
    import torch

    from audioldm.safe_output import OutputError
    from data.tensor_store import TensorStore

    store = TensorStore(tmp_path / "cache")
    store.save("ab01", {"x": torch.ones(3)})
    failing_writes(".pt.")
    with pytest.raises(OutputError, match=r"ab02\.pt: cannot write \(no space left on the device\)$"):
        store.save("ab02", {"x": torch.zeros(10000)})
    assert torch.equal(store.load("ab01")["x"], torch.ones(3)) and not store.has("ab02")
    assert no_temporaries(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_tensor_store_unwritable_folder(tmp_path):
    from audioldm.safe_output import OutputError
    from data.tensor_store import TensorStore

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(OutputError, match="cache: cannot write \\(permission denied\\)$"):
            TensorStore(locked / "cache")
    finally:
        locked.chmod(0o700)


def test_main_guard_turns_write_errors_into_one_line(capsys):
    import errno

    from audioldm.safe_output import main_guard

    @main_guard
    def main(code):
        raise OSError(code, os.strerror(code), "runs/x/last.ckpt")

    assert main(errno.ENOSPC) == 2
    assert capsys.readouterr().err == "error: runs/x/last.ckpt: no space left on the device\n"
    with pytest.raises(OSError):  # other errors are not hidden
        main(errno.EIO)


def test_preencode_disk_full_keeps_the_entries_written(tmp_path, capsys, failing_writes):
    from data import preencode
    from tests.conftest import write_manifest_lines, write_tone
    from tests.ldm_fixtures import ldm_overrides, stage_checkpoints

    ckpts = stage_checkpoints(tmp_path / "stages")
    for i in range(2):
        write_tone(tmp_path / "audio" / f"c{i}.wav", 0.7, 16000, freq=300 + 100 * i)
    manifest = write_manifest_lines(
        tmp_path / "m.jsonl", [{"id": f"c{i}", "path": f"audio/c{i}.wav", "captions": ["a tone"]} for i in range(2)]
    )
    cache = tmp_path / "cache"
    args = [
        "--config",
        str(Path(__file__).resolve().parents[1] / "configs/demo/ldm.yaml"),
        *ldm_overrides(ckpts, manifest, tmp_path / "runs", "data.segment_seconds=0.64"),
        f"data.latent_cache_dir={cache}",
        "--batch-size",
        "1",
    ]
    inputs = snapshot(tmp_path)
    failing_writes(".pt.")  # meta.json goes in; the first clip's entry finds the disk full
    assert preencode.main(args) == 2
    err = one_error_line(capsys)
    assert err.startswith(f"error: {cache}/") and err.endswith(".pt: cannot write (no space left on the device)")
    assert no_temporaries(tmp_path) == [] and (cache / "meta.json").is_file()
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("cache/")} == inputs


@pytest.mark.slow
def test_train_disk_full_keeps_the_finished_checkpoint(tmp_path, capsys, failing_writes, tone_dataset):
    import train
    from tests.test_train import tiny_args

    manifest = tone_dataset
    out = tmp_path / "runs"
    assert train.main(tiny_args(manifest, out, "a", "trainer.max_steps=4")) == 0
    checkpoints = out / "a" / "version_0" / "checkpoints"
    finished = snapshot(checkpoints)
    capsys.readouterr()
    failing_writes("last.ckpt")  # the resumed run's final last.ckpt finds the disk full
    args = tiny_args(manifest, out, "a", "trainer.max_steps=6", f"resume={checkpoints / 'last.ckpt'}")
    assert train.main(args) == 2
    err = one_error_line(capsys)
    assert err.endswith("last.ckpt: cannot write (no space left on the device)"), err
    assert no_temporaries(out) == []
    assert {k: v for k, v in snapshot(checkpoints).items() if k in finished} == finished


# issue 25, cases 2 and 14: long runs stream to disk, keep what they wrote when interrupted, and continue
@pytest.mark.slow
def test_an_interrupted_run_keeps_its_clips_and_the_same_command_continues(
    tiny_ldm_checkpoint, tmp_path, capsys, monkeypatch
):
    from audioldm.request.clip_folder import ClipFolder

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a dog barks\nrain\nan engine\n", encoding="utf-8")
    args = ("--prompts", str(prompts), "--batch-size", "1")
    assert run(tiny_ldm_checkpoint, tmp_path / "whole", *args) == 0  # the same command, never interrupted
    capsys.readouterr()
    add, passes = ClipFolder.add, []

    def interrupted_after_one(self, *a, **k):
        if passes:
            raise KeyboardInterrupt
        passes.append(1)
        return add(self, *a, **k)

    monkeypatch.setattr(ClipFolder, "add", interrupted_after_one)
    out = tmp_path / "out"
    assert run(tiny_ldm_checkpoint, out, *args) == 130
    err = capsys.readouterr().err
    assert (
        err.strip().splitlines()[-1]
        == (f"generate: interrupted; 1 of 3 clip(s) are in {out} (the same command continues from there)")
        and "Traceback" not in err
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "000_a_dog_barks.png",
        "000_a_dog_barks.wav",
        "generate.clips.jsonl",
    ]
    monkeypatch.setattr(ClipFolder, "add", add)
    before = snapshot(out)
    assert run(tiny_ldm_checkpoint, out, *args, "--seed", "3") == 2  # another command is refused
    assert "of another command" in one_error_line(capsys) and snapshot(out) == before
    assert run(tiny_ldm_checkpoint, out, *args) == 0
    assert "continuing in" in capsys.readouterr().out
    whole, resumed = snapshot(tmp_path / "whole"), snapshot(out)
    wavs = [name for name in whole if name.endswith(".wav")]
    assert len(wavs) == 3 and {n: whole[n] for n in wavs} == {n: resumed[n] for n in wavs}  # clip i: seed + i
    manifest = (out / "generated.jsonl").read_text().splitlines()
    assert [line.split('"')[3] for line in manifest] == ["000_a_dog_barks", "001_rain", "002_an_engine"]
    assert not (out / "generate.clips.jsonl").exists()
    assert run(tiny_ldm_checkpoint, out, *args) == 0  # complete: nothing is made again
    assert "wrote 0 clip(s)" in capsys.readouterr().out and snapshot(out) == resumed


@pytest.mark.slow
def test_ctrl_c_in_a_real_process_is_one_line_and_keeps_the_clips(tiny_ldm_checkpoint, tmp_path):
    """generate.py as a user runs it, stopped by a real SIGINT once its first clips are on disk."""
    import signal
    import subprocess
    import sys
    import time

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("".join(f"prompt {i}\n" for i in range(400)), encoding="utf-8")
    out = tmp_path / "out"
    command = [
        sys.executable,
        "generate.py",
        "--ckpt",
        str(tiny_ldm_checkpoint),
        "--prompts",
        str(prompts),
        "--out",
        str(out),
        "--steps",
        "2",
        "--sampler",
        "dpmsolver++",
        "--duration",
        "0.5",
        "--batch-size",
        "2",
        "--device",
        "cpu",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    process = subprocess.Popen(
        command,
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    journal = out / "generate.clips.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (journal.is_file() and journal.read_text().count("\n") >= 3):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    last = err.strip().replace("\r", "\n").splitlines()[-1]
    assert last.startswith("generate: interrupted; ") and "Traceback" not in err, err
    made = int(last.split("; ")[1].split(" of ")[0])
    assert 2 <= made < 400 and len(list(out.glob("*.wav"))) >= made


# issue 25, case 6: prompt files in UTF-8 with a byte-order mark read as the user wrote them; others are named
@pytest.mark.slow
def test_a_byte_order_mark_is_not_part_of_the_prompt(tiny_ldm_checkpoint, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_bytes("\ufeffa dog barks\nrain\n".encode("utf-8"))
    out = tmp_path / "out"
    assert run(tiny_ldm_checkpoint, out, "--prompts", str(prompts)) == 0
    assert sorted(p.name for p in out.glob("*.wav")) == ["000_a_dog_barks.wav", "001_rain.wav"]
    assert (
        "\\ufeff" not in (out / "generated.jsonl").read_text() and "\ufeff" not in (out / "generate.json").read_text()
    )


@pytest.mark.parametrize(
    "data, message",
    [
        (
            "a dog barks\nrain\n".encode("utf-16"),
            "line 1 cannot be read as UTF-8 (byte 0xff at column 1: it looks like UTF-16); save the file as UTF-8",
        ),
        (
            b"a dog barks\ncaf\xe9\n",
            "line 2 cannot be read as UTF-8 (byte 0xe9 at column 4: not UTF-8); save the file as UTF-8",
        ),
    ],
)
def test_a_prompt_file_in_another_encoding_is_named(
    tiny_ldm_checkpoint, tmp_path, capsys, no_model_load, data, message
):
    prompts = tmp_path / "prompts.txt"
    prompts.write_bytes(data)
    assert run(tiny_ldm_checkpoint, tmp_path / "out", "--prompts", str(prompts)) == 2
    assert one_error_line(capsys) == f"error: --prompts {prompts}: {message}"


# issue 25, case 13: what generate.py can check without the model, it checks before loading it
@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--mode", "inpaint", "--audio", "{wav}", "--text", "x", "--span", "3-1"],
            "error: --span '3-1': START must be before END",
        ),
        (
            ["--mode", "inpaint", "--audio", "{wav}", "--text", "x", "--span", "0.5-3"],
            "error: --span 0.5-3 s is outside the clip (0-0.9 s) or empty",
        ),
        (
            ["--mode", "transfer", "--audio", "{tiny}", "--text", "x"],
            "error: --audio {tiny}: the source is too short (800 samples at 16000 Hz; at least 1024)",
        ),
        (
            ["--mode", "sr", "--audio", "{wav}", "--text", "x"],
            "error: --mode sr: in.wav is already at 16000 Hz; say which band to keep with --cutoff HZ",
        ),
        (["--text", "x", "--vocoder", "{missing}"], "error: --vocoder: file not found: {missing}"),
        (["--text", "x", "--tokenizer", "{missing}"], "error: --tokenizer: folder not found: {missing}"),
        (
            ["--text", "x", "--sampler", "lcm", "--steps", "80"],
            "error: --steps (with --sampler lcm: the 50-step grid it was "
            "distilled on) must be a whole number from 1 to 50, got 80",
        ),
    ],
)
def test_checks_that_need_no_model_come_before_it(tiny_ldm_checkpoint, tmp_path, capsys, no_model_load, args, message):
    from tests.conftest import write_tone

    files = {
        "wav": write_tone(tmp_path / "in.wav", 0.9, 16000),
        "tiny": write_tone(tmp_path / "tiny.wav", 0.05, 16000),
        "missing": tmp_path / "missing",
    }
    args = [a.format(**files) for a in args]
    before = snapshot(tmp_path)
    assert generate.main(["--ckpt", str(tiny_ldm_checkpoint), "--out", str(tmp_path / "out"), *args]) == 2
    assert one_error_line(capsys) == message.format(**files)
    assert snapshot(tmp_path) == before


# issue 25, case 7: the app's port is checked before the model loads
@pytest.mark.parametrize(
    "port, message",
    [
        ("99999", "error: --port must be a whole number from 1 to 65535, got 99999"),
        (
            "{busy}",
            "error: --port {busy}: already in use on 127.0.0.1 (choose another --port, or stop what listens there)",
        ),
    ],
)
def test_app_port_is_checked_before_loading(tiny_ldm_checkpoint, capsys, no_model_load, port, message):
    import socket

    import app

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = listener.getsockname()[1]
        assert app.main(["--ckpt", str(tiny_ldm_checkpoint), "--port", port.format(busy=busy)]) == 2
    assert one_error_line(capsys) == message.format(busy=busy)


# issue 25, case 13: the last messages that named the wrong thing
def test_evaluate_generated_that_is_a_file_and_convert_below_a_file(tmp_path, capsys):
    import convert
    import evaluate

    file = tmp_path / "clips.txt"
    file.write_text("x")
    assert (
        evaluate.main(
            [
                "--generated",
                str(file),
                "--reference",
                str(tmp_path),
                "--backbone",
                "clap",
                "--clap-ckpt",
                str(file),
                "--out",
                str(tmp_path / "eval"),
            ]
        )
        == 2
    )
    assert one_error_line(capsys) == f"error: {file}: is a file, not a folder of clips"
    assert convert.main([str(file), str(file / "out.ckpt")]) == 2
    assert one_error_line(capsys) == f"error: {file / 'out.ckpt'}: cannot be written ({file} is a file, not a folder)"
