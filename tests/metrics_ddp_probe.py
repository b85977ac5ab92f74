"""Run under torch.distributed.run (2 CPU processes, gloo): each rank feeds its share of a fixed
data set (rows rank::world, as DistributedSampler deals them) to every evaluation metric and
writes the synced results; tests/test_metrics.py compares them with one process on all data.

Usage: python -m torch.distributed.run --standalone --nproc_per_node 2 tests/metrics_ddp_probe.py OUT
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

from evaluation.clap_score import ClapScore  # noqa: E402
from evaluation.frechet import FrechetDistance  # noqa: E402
from evaluation.inception_score import InceptionScore  # noqa: E402
from evaluation.kl import PairedKL  # noqa: E402

DIM = 16


def make_data(seed: int = 0) -> dict[str, torch.Tensor]:
    """Odd-sized sets, so the two ranks get different numbers of rows."""
    g = torch.Generator().manual_seed(seed)
    randn = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)  # noqa: E731
    return {
        "real": randn(71, DIM) @ randn(DIM, DIM) + 2.0,
        "fake": randn(54, DIM) @ randn(DIM, DIM) + 1.5,
        "gen_logits": 3 * randn(41, 12),
        "ref_logits": 3 * randn(41, 12),
        "is_logits": 4 * randn(53, 12).float(),
        "audio": randn(37, 32).float(),
        "text": randn(37, 32).float(),
    }


def run_metrics(data: dict[str, torch.Tensor], rank: int = 0, world: int = 1, batch: int = 7) -> dict[str, float]:
    """Feed rows rank::world in batches of `batch`; return every metric's computed value."""
    fd, kl, isc, clap = FrechetDistance(DIM), PairedKL(), InceptionScore(), ClapScore()
    mine = {k: v[rank::world] for k, v in data.items()}
    is_ids = torch.arange(len(data["is_logits"]))[rank::world]
    for i in range(0, max(len(v) for v in mine.values()), batch):
        b = slice(i, i + batch)
        if len(mine["real"][b]):
            fd.update(mine["real"][b], real=True)
        if len(mine["fake"][b]):
            fd.update(mine["fake"][b], real=False)
        if len(mine["gen_logits"][b]):
            kl.update(mine["gen_logits"][b], mine["ref_logits"][b])
        if len(mine["is_logits"][b]):
            isc.update(mine["is_logits"][b], ids=is_ids[b])
        if len(mine["audio"][b]):
            clap.update(mine["audio"][b], mine["text"][b])
    out = {"fd": float(fd.compute()), "clap": float(clap.compute())}
    out.update({k: float(v) for k, v in {**kl.compute(), **isc.compute()}.items()})
    return out


def main(out: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    results = run_metrics(make_data(), rank, world)
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(results, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
