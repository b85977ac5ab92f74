"""train.py end to end on tiny data: dispatch, early errors, checkpoints with config, TensorBoard
output, repeatable seeds, and resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

import train

REPO = Path(__file__).resolve().parents[1]
DEMO_VAE = str(REPO / "configs" / "demo" / "vae.yaml")


def tiny_args(manifest: Path, out: Path, name: str, *extra: str) -> list[str]:
    return [
        "--config",
        DEMO_VAE,
        f"data.train_manifest={manifest}",
        f"output_dir={out}",
        f"name={name}",
        "data.num_workers=0",
        "data.segment_seconds=1.28",
        "data.batch_size=3",
        "trainer.max_steps=7",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
        "checkpoint.every_n_train_steps=4",
        "model.disc_start=3",
        *extra,
    ]


def last_checkpoint(out: Path, name: str, version: int) -> dict:
    path = out / name / f"version_{version}" / "checkpoints" / "last.ckpt"
    return torch.load(path, map_location="cpu", weights_only=False)


def test_missing_required_keys_are_one_line(tmp_path, capsys):
    cfg = tmp_path / "ldm.yaml"
    cfg.write_text("stage: ldm\nname: x\n")
    assert train.main(["--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {cfg}: required key(s) not set: data.train_manifest, model.clap_ckpt, model.vae_ckpt "
        f"(set them in the file or as key=value on the command line)"
    )


def test_config_typo_fails_before_data_is_read(tmp_path, capsys):
    args = tiny_args(tmp_path / "does_not_exist.jsonl", tmp_path, "x", "data.batchsize=3")
    assert train.main(args) == 2
    err = capsys.readouterr().err
    assert "command line: unknown key 'data.batchsize'" in err and "data.batch_size" in err
    assert train.main(tiny_args(tmp_path / "does_not_exist.jsonl", tmp_path, "x")) == 2
    assert "data.train_manifest: file not found" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_print_config_shows_resolved_values(tmp_path, capsys):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("")
    assert train.main(tiny_args(manifest, tmp_path, "p", "--print-config")) == 0
    out = capsys.readouterr().out
    assert "stage: vae" in out and "batch_size: 3" in out and "n_mels: 64" in out


@pytest.mark.slow
def test_train_checkpoint_logs_seed_and_exact_resume(tone_dataset, tmp_path):
    """21 train clips in batches of 3: 7 batches an epoch; the VAE steps two optimisers per batch
    (global_step +2) and its GAN starts after 3 batches. Run A stops mid-epoch after 4 batches and
    resumes to 10 batches (into epoch 2); run B goes straight to 10. Same seed: same weights."""
    out = tmp_path / "runs"
    assert train.main(tiny_args(tone_dataset, out, "a", "trainer.max_steps=8")) == 0
    ckpt = last_checkpoint(out, "a", 0)
    assert ckpt["global_step"] == 8 and ckpt["stage"] == "vae"
    assert ckpt["config"]["data"]["train_manifest"] == str(tone_dataset)
    assert ckpt["config"]["model"]["latent_channels"] == 8 and ckpt["config"]["audio"]["n_mels"] == 64

    # same seed, same run: identical weights
    assert train.main(tiny_args(tone_dataset, out, "a2", "trainer.max_steps=8")) == 0
    assert_same_weights(ckpt, last_checkpoint(out, "a2", 0))

    # resume mid-epoch: step, optimiser and scheduler state, data position and RNG continue
    resume = out / "a" / "version_0" / "checkpoints" / "last.ckpt"
    assert train.main(tiny_args(tone_dataset, out, "a", f"resume={resume}", "trainer.max_steps=20")) == 0
    resumed = last_checkpoint(out, "a", 0)  # the same run folder continues
    assert not (out / "a" / "version_1").exists()
    assert resumed["global_step"] == 20
    # the autoencoder stepped 10 times; the discriminator only from its start (after 3 batches): 7
    for optimizer, scheduler, steps in zip(resumed["optimizer_states"], resumed["lr_schedulers"], (10, 7)):
        assert {int(s["step"]) for s in optimizer["state"].values()} == {steps}
        assert scheduler["last_epoch"] == 10
    assert train.main(tiny_args(tone_dataset, out, "b", "trainer.max_steps=20")) == 0
    straight = last_checkpoint(out, "b", 0)
    assert_same_weights(resumed, straight)

    # TensorBoard: losses, learning rate, grad norm, skipped clips, media, hparams
    run_dir = out / "b" / "version_0"
    events = EventAccumulator(str(run_dir)).Reload()
    tags = set(events.Tags()["scalars"])
    assert {
        "train/loss",
        "train/l1",
        "train/kl",
        "train/g_loss",
        "val/mel_l1",
        "lr/autoencoder",
        "grad_norm/optimizer_0",
        "grad_norm/optimizer_1",
    } <= tags
    skipped = [e.value for e in events.Scalars("data/skipped_clips_train")]
    assert skipped[0] == 1.0  # one full epoch (21 clips in 7 batches of 3); the corrupt file is met once
    plugins = {
        v.metadata.plugin_data.plugin_name
        for f in run_dir.glob("events.*")
        for ev in EventFileLoader(str(f)).Load()
        for v in ev.summary.value
    }
    assert "hparams" in plugins
    assert "stage: vae" in (run_dir / "hparams.yaml").read_text()


def assert_same_weights(a: dict, b: dict) -> None:
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(value, b["state_dict"][key], rtol=0, atol=0, msg=key)


@pytest.mark.slow
def test_progress_is_printed_when_output_is_not_a_terminal(tone_dataset, tmp_path, caplog):
    """Under pytest stdout is not a terminal: plain progress lines replace the (silent) progress bar."""
    import logging

    caplog.set_level(logging.INFO, logger="pytorch_lightning")
    args = [
        a
        for a in tiny_args(tone_dataset, tmp_path, "p", "trainer.max_steps=20")
        if a != "trainer.enable_progress_bar=false"
    ]
    assert train.main(args) == 0
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("p: ")]
    assert lines[0] == "p: training from step 0 to 20 (progress every 1 steps or 60 s)"
    steps = [line for line in lines if line.startswith("p: step ")]
    assert steps[0].startswith("p: step 2/20 (10%), ") and "s left; train/" in steps[1]  # 2 steps a batch (GAN)
    assert steps[-1].startswith("p: step 20/20 (100%)")
    assert any(line.startswith("p: validation at step ") and "val/" in line for line in lines)
