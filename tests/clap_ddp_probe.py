"""Run under torch.distributed.run (2 CPU processes, gloo): each rank embeds its half of a fixed
batch with identically seeded tiny CLAP weights and writes the contrastive loss it computes.

Usage: python -m torch.distributed.run --standalone --nproc_per_node 2 tests/clap_ddp_probe.py OUT
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch.distributed as dist  # noqa: E402

from lightning_modules.clap import make_clip_loss  # noqa: E402
from tests.test_clap import fixed_batch, tiny_embedder  # noqa: E402


def main(out: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    embedder = tiny_embedder().eval()  # no dropout; batch norm uses running statistics
    waves, captions = fixed_batch()
    half = len(captions) // world
    mine = slice(rank * half, (rank + 1) * half)
    loss_fn = make_clip_loss(rank, world)
    loss = loss_fn(embedder.embed_audio(waves[mine]), embedder.embed_text(captions[mine]), embedder.logit_scale)
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"loss": float(loss)}, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
