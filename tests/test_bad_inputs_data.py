"""Bad input (issue 15), training, data and conversion side: one last.ckpt, one-line errors for a
resume of another shape, directories named like audio, broken caption CSVs, empty inputs, clips that
share a name, tokenizer folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import train
from tests.conftest import write_manifest_lines, write_tone
from tests.test_bad_inputs import one_error_line, snapshot
from tests.test_convert_official import HEAD_CHANNELS, original_ckpt  # noqa: F401  (a fixture: an original .ckpt)

REPO = Path(__file__).resolve().parents[1]
DEMO_VAE = str(REPO / "configs" / "demo" / "vae.yaml")


def small_dataset(root: Path, clips: int = 8) -> Path:
    rows = []
    for i in range(clips):
        write_tone(root / "audio" / f"c{i}.wav", 1.5, 16000, freq=200 + 50 * i, seed=i)
        rows.append(
            {"id": f"c{i}", "path": f"audio/c{i}.wav", "captions": [f"tone {i}"], "split": "val" if i == 0 else "train"}
        )
    return write_manifest_lines(root / "manifest.jsonl", rows)


def vae_args(manifest: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--config",
        DEMO_VAE,
        f"data.train_manifest={manifest}",
        f"output_dir={out}",
        "name=run",
        "data.num_workers=0",
        "data.segment_seconds=1.28",
        "data.batch_size=3",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        *extra,
    ]


def checkpoints(out: Path) -> dict[str, int]:
    """{file name: global_step} of every checkpoint of the run."""
    return {
        p.name: torch.load(p, map_location="cpu", weights_only=False)["global_step"]
        for p in sorted((out / "run" / "version_0" / "checkpoints").glob("*.ckpt"))
    }


# case 10: one last.ckpt, the final state, whatever max_steps and the interval are
@pytest.mark.slow
def test_one_last_checkpoint_when_no_interval_save_happens(tmp_path):
    """The VAE steps twice per batch; no interval checkpoint falls within the run (Lightning's own save at
    the end of training used to add last-v1.ckpt), then a resume whose final step is an interval step."""
    manifest, out = small_dataset(tmp_path), tmp_path / "runs"
    assert train.main(vae_args(manifest, out, "trainer.max_steps=6", "checkpoint.every_n_train_steps=50")) == 0
    assert checkpoints(out) == {"last.ckpt": 6}
    last = out / "run" / "version_0" / "checkpoints" / "last.ckpt"
    assert (
        train.main(
            vae_args(manifest, out, "trainer.max_steps=12", "checkpoint.every_n_train_steps=4", f"resume={last}")
        )
        == 0
    )
    assert checkpoints(out) == {"epoch=2-step=12.ckpt": 12, "last.ckpt": 12}  # save_top_k 1 keeps the newest


@pytest.mark.slow
def test_ctrl_c_leaves_one_last_checkpoint_at_the_interruption(tmp_path, monkeypatch):
    import pytorch_lightning as pl

    from lightning_modules import trainer as trainer_module

    class CtrlC(pl.Callback):
        def on_train_batch_end(self, trainer, *args) -> None:
            if trainer.global_step == 4:
                raise KeyboardInterrupt

    monkeypatch.setattr(trainer_module, "stage_callbacks", lambda config: [CtrlC()])
    manifest, out = small_dataset(tmp_path), tmp_path / "runs"
    with pytest.raises(SystemExit):  # Lightning exits after its graceful shutdown
        train.main(vae_args(manifest, out, "trainer.max_steps=20", "checkpoint.every_n_train_steps=50"))
    assert checkpoints(out) == {"last.ckpt": 4}


# case 9: resume with another network shape: one line, like init_from
@pytest.mark.slow
def test_resume_with_another_shape_is_one_line(tmp_path, capsys):
    manifest, out = small_dataset(tmp_path), tmp_path / "runs"
    assert train.main(vae_args(manifest, out, "trainer.max_steps=2")) == 0
    last = out / "run" / "version_0" / "checkpoints" / "last.ckpt"
    before = snapshot(out / "run" / "version_0" / "checkpoints")
    capsys.readouterr()
    assert (
        train.main(
            vae_args(manifest, out, "trainer.max_steps=4", f"resume={last}", "model.block_out_channels=[16,32,64]")
        )
        == 2
    )
    err = one_error_line(capsys)
    assert err.startswith(f"error: resume {last}: weights do not fit the model (") and "size mismatch" not in err
    assert "model.block_out_channels: checkpoint [16, 32, 32] vs config [16, 32, 64]" in err
    assert snapshot(out / "run" / "version_0" / "checkpoints") == before


# case 12: a directory where a file is expected is called a directory
def test_directory_named_like_a_file_is_called_a_directory(tmp_path, capsys):
    from audioldm.audio.io import AudioReadError, audio_info
    from data.manifest import ManifestError, read_manifest
    from data.preparers.manifest_builder import MetadataError, read_csv

    folder = tmp_path / "x.wav"
    folder.mkdir()
    with pytest.raises(AudioReadError, match=r"x\.wav: is a directory, not a file$"):
        audio_info(folder)
    with pytest.raises(AudioReadError, match=r"nope\.wav: file does not exist$"):
        audio_info(tmp_path / "nope.wav")
    with pytest.raises(ManifestError, match=r"x\.wav: is a directory, not a manifest file$"):
        read_manifest(folder)
    with pytest.raises(MetadataError, match=r"x\.wav: is a directory, not a metadata file$"):
        read_csv(folder, ("caption",))
    assert train.main(["--config", DEMO_VAE, f"data.train_manifest={folder}", "--print-config"]) == 2
    assert one_error_line(capsys) == f"error: data.train_manifest: {folder} is a directory, not a file"


# case 12: an unterminated quote in a caption CSV is reported with its line, not swallowing rows
@pytest.mark.parametrize(
    "text, line, to",
    [
        ('file_name,caption\na.wav,a tone\nb.wav,"another tone\nc.wav,a third\n', 3, 4),
        ('file_name,caption\na.wav,"a tone\nb.wav,another tone\nc.wav,"a third"\n', 2, 4),
    ],
)
def test_unterminated_quote_in_captions_csv_names_its_line(tmp_path, capsys, text, line, to):
    from data import prepare

    for name in "abc":
        write_tone(tmp_path / "audio" / f"{name}.wav", 0.5, 16000)
    csv_path = tmp_path / "caps.csv"
    csv_path.write_text(text, encoding="utf-8")
    before = snapshot(tmp_path)
    code = prepare.main(
        [
            "folder",
            "--audio-dir",
            str(tmp_path / "audio"),
            "--captions-csv",
            str(csv_path),
            "--out",
            str(tmp_path / "out.jsonl"),
        ]
    )
    assert code == 2
    assert one_error_line(capsys) == (
        f"error: {csv_path}:{line}: a quoted value runs on to line {to} (an "
        f"unterminated quote?): close the quote, or put the value on one line"
    )
    assert snapshot(tmp_path) == before


def test_quoted_commas_on_one_line_still_read(tmp_path):
    from data.preparers.manifest_builder import read_csv

    csv_path = tmp_path / "caps.csv"
    csv_path.write_text('file_name,caption\na.wav,"a dog, then a cat"\n\nb.wav, "birds"\n', encoding="utf-8")
    assert read_csv(csv_path, ("caption",)) == [
        {"file_name": "a.wav", "caption": "a dog, then a cat"},
        {"file_name": "b.wav", "caption": "birds"},
    ]


# case 12: key=value overrides may come before --config
def test_overrides_before_config_are_accepted(tmp_path, capsys):
    manifest = write_manifest_lines(tmp_path / "m.jsonl", [{"id": "a", "path": "a.wav"}])
    assert (
        train.main(
            [
                f"data.train_manifest={manifest}",
                "data.batch_size=5",
                "--config",
                DEMO_VAE,
                "trainer.max_steps=9",
                "--print-config",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "batch_size: 5" in out and "max_steps: 9" in out and str(manifest) in out
    from data import preencode  # the same for data.preencode: the misspelt key reaches the config check

    assert preencode.main(["data.batch_sise=3", "--config", str(REPO / "configs" / "demo" / "ldm.yaml")]) == 2
    assert "data.batch_sise" in capsys.readouterr().err


# case 3: files of one stem with other extensions are all kept, with distinct ids
def test_same_stem_other_extension_are_two_entries(tmp_path, capsys):
    from data import prepare
    from data.manifest import read_manifest

    audio = tmp_path / "sounds"
    write_tone(audio / "clip.mp3", 0.5, 16000, subtype="MPEG_LAYER_III")
    write_tone(audio / "clip.ogg", 0.5, 16000, subtype="VORBIS", freq=300)
    write_tone(audio / "other.wav", 0.5, 16000, freq=500)
    (audio / "clip.txt").write_text("from the sidecar\n", encoding="utf-8")
    csv_path = tmp_path / "caps.csv"
    csv_path.write_text(
        "file_name,caption\nclip,both files\nclip.ogg,only the ogg\nclip.wav,both again\nother,the wav\n",
        encoding="utf-8",
    )
    before = snapshot(tmp_path)
    out = tmp_path / "out" / "m.jsonl"
    assert prepare.main(["folder", "--audio-dir", str(audio), "--captions-csv", str(csv_path), "--out", str(out)]) == 0
    assert "wrote 3 entries" in capsys.readouterr().out
    entries = {e.id: (Path(e.path).name, e.captions) for e in read_manifest(out)}
    assert entries == {
        "sounds_clip.mp3": ("clip.mp3", ["from the sidecar", "both files", "both again"]),
        "sounds_clip.ogg": ("clip.ogg", ["from the sidecar", "both files", "only the ogg", "both again"]),
        "sounds_other": ("other.wav", ["the wav"]),
    }
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("out/")} == before


# case 5: empty inputs say plainly what is empty and exit non-zero
DEMO_CLAP = str(REPO / "configs" / "demo" / "clap.yaml")


def uncaptioned(root: Path, captions: list[str]) -> Path:
    rows = []
    for i in range(4):
        write_tone(root / "audio" / f"c{i}.wav", 0.5, 16000, seed=i)
        rows.append({"id": f"c{i}", "path": f"audio/c{i}.wav", "captions": captions})
    return write_manifest_lines(root / "manifest.jsonl", rows)


@pytest.mark.slow
@pytest.mark.parametrize(
    "config, manifest_of, message",
    [
        (
            DEMO_VAE,
            lambda root: write_manifest_lines(root / "manifest.jsonl", []),
            "the manifest is empty (no clips to train on)",
        ),
        (DEMO_CLAP, lambda root: uncaptioned(root, []), "none of its 3 training clips has a caption"),
        (DEMO_CLAP, lambda root: uncaptioned(root, ["", "  "]), "none of its 3 training clips has a caption"),
    ],
)
def test_train_on_empty_input_is_one_line(tmp_path, capsys, config, manifest_of, message):
    (tmp_path / "data").mkdir()
    manifest = manifest_of(tmp_path / "data")
    before = snapshot(tmp_path)
    code = train.main(
        [
            "--config",
            config,
            f"data.train_manifest={manifest}",
            f"output_dir={tmp_path / 'runs'}",
            "data.num_workers=0",
            "trainer.max_steps=1",
            "trainer.enable_progress_bar=false",
        ]
    )
    assert code == 2
    assert one_error_line(capsys).startswith(f"error: {manifest}: {message}")
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("runs/")} == before
    assert not list((tmp_path / "runs").rglob("*.ckpt"))


def unreadable_manifest(root: Path) -> Path:
    (root / "audio").mkdir(parents=True)
    rows = []
    for i in range(2):
        (root / "audio" / f"bad{i}.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
        rows.append({"id": f"bad{i}", "path": f"audio/bad{i}.wav", "captions": ["broken"], "split": "train"})
    return write_manifest_lines(root / "manifest.jsonl", rows)


@pytest.mark.parametrize("kind", ["empty", "unreadable"])
def test_shard_writer_fails_when_nothing_is_written(tmp_path, capsys, kind):
    from data.shard_writer import main as shard_main

    root = tmp_path / "data"
    root.mkdir()
    manifest = unreadable_manifest(root) if kind == "unreadable" else write_manifest_lines(root / "m.jsonl", [])
    before = snapshot(tmp_path)
    assert shard_main(["--manifest", str(manifest), "--out", str(tmp_path / "shards")]) == 2
    counts = "2 entries, 2 unreadable" if kind == "unreadable" else "0 entries, 0 unreadable"
    assert one_error_line(capsys) == f"error: {manifest}: nothing to shard ({counts})"
    assert not (tmp_path / "shards").exists() and snapshot(tmp_path) == before
    assert not [p for p in tmp_path.iterdir() if p.name != "data"]  # no temporary folder left


@pytest.mark.slow
def test_preencode_fails_when_nothing_is_encoded(tmp_path, capsys):
    from data import preencode
    from tests.ldm_fixtures import ldm_overrides, stage_checkpoints

    ckpts = stage_checkpoints(tmp_path / "stages")
    manifest = unreadable_manifest(tmp_path / "data")
    cache = tmp_path / "cache"
    before = snapshot(tmp_path)
    code = preencode.main(
        [
            "--config",
            str(REPO / "configs" / "demo" / "ldm.yaml"),
            *ldm_overrides(ckpts, manifest, tmp_path / "runs", "data.segment_seconds=0.64"),
            f"data.latent_cache_dir={cache}",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"error: {manifest}: nothing encoded (2 unreadable clips)"
    assert "Traceback" not in err
    assert {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("cache/")} == before


# case 11: tokenizer folders of official weights
def bare_tokenizer(roberta_tokenizer_dir: Path, folder: Path) -> Path:
    """A folder holding only vocab.json + merges.txt, as the README describes."""
    folder.mkdir(parents=True)
    for name in ("vocab.json", "merges.txt"):
        (folder / name).write_bytes((roberta_tokenizer_dir / "raw" / name).read_bytes())
    return folder


def test_a_bare_vocab_and_merges_folder_is_a_tokenizer(roberta_tokenizer_dir, tmp_path):
    from transformers import RobertaTokenizer

    from audioldm.models.clap_tokenizer import ClapTokenizer, TokenizerError

    bare = bare_tokenizer(roberta_tokenizer_dir, tmp_path / "bare")
    ids, mask = ClapTokenizer(str(bare), max_length=12)(["a dog barks", "tin"])
    reference = RobertaTokenizer.from_pretrained(str(roberta_tokenizer_dir))(
        ["a dog barks", "tin"], padding="max_length", max_length=12, truncation=True, return_tensors="pt"
    )
    assert torch.equal(ids, reference["input_ids"]) and torch.equal(mask, reference["attention_mask"])
    (bare / "merges.txt").unlink()
    with pytest.raises(TokenizerError, match=r"bare: not a loadable tokenizer folder .*nor both vocab.json and"):
        ClapTokenizer(str(bare))


@pytest.mark.slow
def test_converted_checkpoint_keeps_its_tokenizer(
    original_ckpt,  # noqa: F811  (the fixture)
    roberta_tokenizer_dir,
    tmp_path,
    monkeypatch,
    capsys,
):
    """--tokenizer given as a relative bare folder: the converted checkpoint keeps a copy beside it (absolute
    path, model_max_length 512) and loads from another folder after the original folder is gone; the
    diffusers export's tokenizer has model_max_length 512, so AudioLDMPipeline can pad to it."""
    import json
    import shutil

    import convert
    from audioldm.assembly.latent_diffusion import load_ldm

    work = tmp_path / "work"
    bare_tokenizer(roberta_tokenizer_dir, work / "roberta")
    monkeypatch.chdir(work)
    assert (
        convert.main([str(original_ckpt), "out/ours.ckpt", "--tokenizer", "roberta", "--head-channels", HEAD_CHANNELS])
        == 0
    )
    assert (
        convert.main(
            [
                str(original_ckpt),
                "out/diffusers",
                "--to",
                "diffusers",
                "--tokenizer",
                "roberta",
                "--head-channels",
                HEAD_CHANNELS,
            ]
        )
        == 0
    )
    kept = (work / "out" / "ours.tokenizer").resolve()
    checkpoint = torch.load(work / "out" / "ours.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["stage_configs"]["clap"]["model"]["tokenizer_path"] == str(kept)
    assert json.loads((kept / "tokenizer_config.json").read_text())["model_max_length"] == 512
    config = json.loads((work / "out" / "diffusers" / "tokenizer" / "tokenizer_config.json").read_text())
    assert config["model_max_length"] == 512

    # a second conversion to the same name is refused before any work, naming the tokenizer folder
    shutil.move(work / "out" / "ours.ckpt", work / "elsewhere.ckpt")
    capsys.readouterr()
    assert convert.main([str(original_ckpt), "out/ours.ckpt", "--tokenizer", "roberta"]) == 2
    assert one_error_line(capsys) == (
        f"error: {Path('out/ours.tokenizer')}: already exists (a converted checkpoint "
        f"keeps its CLAP tokenizer there); choose a new output path"
    )
    shutil.move(work / "elsewhere.ckpt", work / "out" / "ours.ckpt")

    shutil.rmtree(work / "roberta")
    monkeypatch.chdir(tmp_path)
    model = load_ldm(work / "out" / "ours.ckpt")
    assert model.clap.tokenizer.path == str(kept)
    assert model.clap.embed_text(["a dog barks"]).shape[0] == 1

    from diffusers import AudioLDMPipeline

    pipe = AudioLDMPipeline.from_pretrained(str(work / "out" / "diffusers"), local_files_only=True)
    tokens = pipe.tokenizer(
        ["a dog barks"],
        padding="max_length",
        max_length=pipe.tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    )
    assert tokens["input_ids"].shape == (1, 512)


# issue 25, case 1: SIGTERM (a preempted job) saves the exact step and exits 143, and the run resumes from it
@pytest.mark.slow
def test_sigterm_saves_the_step_it_stopped_at_and_exits_non_zero(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    manifest, out = small_dataset(tmp_path), tmp_path / "runs"
    args = vae_args(manifest, out, "trainer.max_steps=2000", "checkpoint.every_n_train_steps=10")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "train.py", *args],
        cwd=REPO,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    folder = out / "run" / "version_0" / "checkpoints"
    deadline = time.time() + 180
    while time.time() < deadline and not any(p.name.startswith("epoch=") for p in folder.glob("*.ckpt")):
        time.sleep(0.2)
    time.sleep(1.0)  # a few more steps past the interval checkpoint
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=180)
    assert process.returncode == 143, err
    last = folder / "last.ckpt"
    step = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
    assert (
        err.strip().splitlines()[-1]
        == (f"train: stopped by SIGTERM at step {step}; that step is saved in {last} (continue with resume={last})")
        and "Traceback" not in err
    )
    intervals = [v for k, v in checkpoints(out).items() if k != "last.ckpt"]
    assert 10 <= max(intervals) <= step < 2000  # the step it stopped at (past the last interval checkpoint)
    assert train.main(vae_args(manifest, out, f"trainer.max_steps={step + 4}", f"resume={last}")) == 0
    assert checkpoints(out)["last.ckpt"] == step + 4


# issue 25, cases 7-9 and 11: paths, data and steps that would fail late or do nothing are refused first
@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ("output_dir={file}/runs",),
            "error: output_dir: {file}/runs: cannot be written ({file} is a file, not a folder)",
        ),
        (("trainer.max_steps=0",), "trainer.max_steps=0 trains nothing (a positive step count, or -1 for no limit)"),
    ],
)
def test_train_refuses_before_any_work(tmp_path, capsys, extra, message):
    manifest, out = small_dataset(tmp_path), tmp_path / "runs"
    file = tmp_path / "a_file"
    file.write_text("x")
    assert train.main(vae_args(manifest, out, *(e.format(file=file) for e in extra))) == 2
    assert message.format(file=file) in one_error_line(capsys)
    assert not out.exists()


@pytest.mark.slow
def test_resuming_past_max_steps_says_nothing_would_be_trained(tmp_path, capsys):
    manifest, out = small_dataset(tmp_path), tmp_path / "runs"
    assert train.main(vae_args(manifest, out, "trainer.max_steps=4")) == 0
    last = out / "run" / "version_0" / "checkpoints" / "last.ckpt"
    before = snapshot(out)
    capsys.readouterr()
    assert train.main(vae_args(manifest, out, "trainer.max_steps=2", f"resume={last}")) == 2
    assert one_error_line(capsys) == (
        f"error: resume: {last}: is at step 4, already at trainer.max_steps=2: nothing would be trained; raise "
        f"trainer.max_steps to go on"
    )
    assert snapshot(out) == before


def duplicate_ids(root: Path) -> Path:
    write_tone(root / "a.wav", 1.0)
    return write_manifest_lines(root / "manifest.jsonl", [{"id": "x", "path": "a.wav"}, {"id": "x", "path": "a.wav"}])


@pytest.mark.parametrize(
    "manifest_of, message",
    [
        (duplicate_ids, "duplicate id"),
        pytest.param(unreadable_manifest, "clips in a row could not be read", marks=pytest.mark.slow),
    ],
)
def test_data_that_fails_leaves_no_run_folder_and_one_line(tmp_path, capsys, manifest_of, message):
    """A manifest refused when it is read (duplicate ids) leaves no empty version_0 behind; one where no clip can
    be read stops with its own one-line message, also from a DataLoader worker (not a Lightning traceback)."""
    manifest = manifest_of(tmp_path / "data")
    out = tmp_path / "runs"
    code = train.main(
        vae_args(manifest, out, "trainer.max_steps=4", "data.num_workers=1", "data.batch_size=1", "data.val_fraction=0")
    )
    assert code == 2 and message in one_error_line(capsys)
    if manifest_of is duplicate_ids:
        assert not out.exists()


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "stage: vae\nname: t\n\tdata: {train_manifest: m}\n",
            "found character '\\t' that cannot start any token at line 3, column 1",
        ),
        ("stage: vae\nname: [t\n", "at line 3, column 1"),
    ],
)
def test_yaml_errors_keep_their_line_and_column(tmp_path, capsys, text, message):
    config = tmp_path / "bad.yaml"
    config.write_text(text, encoding="utf-8")
    assert train.main(["--config", str(config)]) == 2
    err = one_error_line(capsys)
    assert err.startswith(f"error: {config}: not valid YAML (") and message in err, err


# issue 25, case 11: data.prepare over a folder where no clip can be read is an error, as shard_writer's
def test_prepare_with_no_readable_clip_writes_no_manifest(tmp_path, capsys):
    from data import prepare

    audio = tmp_path / "audio"
    audio.mkdir()
    for i in range(3):
        (audio / f"bad{i}.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    out = tmp_path / "m.jsonl"
    assert prepare.main(["folder", "--audio-dir", str(audio), "--out", str(out)]) == 2
    missing = tmp_path / "m.jsonl.missing.txt"
    assert one_error_line(capsys) == (
        f"error: {out}: no clip to write: 0 missing and 3 unreadable of 3 in the metadata (listed in {missing}); no "
        f"manifest written"
    )
    assert not out.exists() and len(missing.read_text().splitlines()) == 3


def test_shared_causes_name_a_file_in_the_path():
    import errno

    from audioldm.safe_output import write_error

    error = write_error("runs/x.ckpt", NotADirectoryError(errno.ENOTDIR, "Not a directory"))
    assert str(error) == "runs/x.ckpt: cannot write (a part of the path is a file, not a folder)"
