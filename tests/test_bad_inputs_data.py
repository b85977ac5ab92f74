"""Bad input (issue 15), training, data and conversion side: one last.ckpt, one-line errors for a
resume of another shape, directories named like audio, broken caption CSVs, empty inputs, clips that
share a name, tokenizer folders."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import train
from tests.conftest import write_manifest_lines, write_tone
from tests.test_bad_inputs import one_error_line, snapshot

REPO = Path(__file__).resolve().parents[1]
DEMO_VAE = str(REPO / "configs" / "demo" / "vae.yaml")


def small_dataset(root: Path, clips: int = 8) -> Path:
    rows = []
    for i in range(clips):
        write_tone(root / "audio" / f"c{i}.wav", 1.5, 16000, freq=200 + 50 * i, seed=i)
        rows.append({"id": f"c{i}", "path": f"audio/c{i}.wav", "captions": [f"tone {i}"],
                     "split": "val" if i == 0 else "train"})
    return write_manifest_lines(root / "manifest.jsonl", rows)


def vae_args(manifest: Path, out: Path, *extra: str) -> list[str]:
    return ["--config", DEMO_VAE, f"data.train_manifest={manifest}", f"output_dir={out}", "name=run",
            "data.num_workers=0", "data.segment_seconds=1.28", "data.batch_size=3", "trainer.log_every_n_steps=1",
            "trainer.enable_progress_bar=false", *extra]


def checkpoints(out: Path) -> dict[str, int]:
    """{file name: global_step} of every checkpoint of the run."""
    return {p.name: torch.load(p, map_location="cpu", weights_only=False)["global_step"]
            for p in sorted((out / "run" / "version_0" / "checkpoints").glob("*.ckpt"))}


# case 10: one last.ckpt, the final state, whatever max_steps and the interval are
@pytest.mark.slow
def test_one_last_checkpoint_when_no_interval_save_happens(tmp_path):
    """The VAE steps twice per batch; no interval checkpoint falls within the run (Lightning's own save at
    the end of training used to add last-v1.ckpt), then a resume whose final step is an interval step."""
    manifest, out = small_dataset(tmp_path), tmp_path / "runs"
    assert train.main(vae_args(manifest, out, "trainer.max_steps=6", "checkpoint.every_n_train_steps=50")) == 0
    assert checkpoints(out) == {"last.ckpt": 6}
    last = out / "run" / "version_0" / "checkpoints" / "last.ckpt"
    assert train.main(vae_args(manifest, out, "trainer.max_steps=12", "checkpoint.every_n_train_steps=4",
                               f"resume={last}")) == 0
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
    assert train.main(vae_args(manifest, out, "trainer.max_steps=4", f"resume={last}",
                               "model.block_out_channels=[16,32,64]")) == 2
    err = one_error_line(capsys)
    assert err.startswith(f"error: resume {last}: weights do not fit the model (") and "size mismatch" not in err
    assert "model.block_out_channels: checkpoint [16, 32, 32] vs config [16, 32, 64]" in err
    assert snapshot(out / "run" / "version_0" / "checkpoints") == before
