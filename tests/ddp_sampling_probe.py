"""Run under torch.distributed.run with 2 CPU processes: each rank records the clip ids it sees.

Usage: python -m torch.distributed.run --standalone --nproc_per_node 2 tests/ddp_sampling_probe.py MANIFEST OUT [SHARDS]
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402

from audioldm.audio.mel import MelConfig  # noqa: E402
from audioldm.config.schema import DataConfig  # noqa: E402
from data.datamodule import VaeDataModule  # noqa: E402


class IdRecorder(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen = {"train": [], "val": []}

    def training_step(self, batch, batch_idx):
        self.seen["train"] += batch["id"]
        return (self.weight * batch["log_mel"].mean()).sum()

    def validation_step(self, batch, batch_idx):
        self.seen["val"] += batch["id"]

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def main(manifest: str, out: str, shards: str | None = None) -> None:
    if shards:  # train from the shards (2 loader workers per rank), validate on the manifest's val clips
        data = DataConfig(
            train_manifest=None,
            shards=shards,
            val_manifest=manifest,
            segment_seconds=0.64,
            batch_size=2,
            num_workers=2,
            shuffle_buffer=4,
        )
    else:
        data = DataConfig(train_manifest=manifest, segment_seconds=0.64, batch_size=2, num_workers=0)
    module = IdRecorder()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
    )
    pl.seed_everything(0)
    trainer.fit(module, datamodule=VaeDataModule(data, MelConfig()))
    with open(os.path.join(out, f"rank{trainer.global_rank}.json"), "w") as f:
        json.dump(module.seen, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
