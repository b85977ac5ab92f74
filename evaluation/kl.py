"""KL divergence between classifier outputs of paired generated and reference clips (audioldm_eval).

For N pairs (a generated clip and the reference clip of the same file name) with CNN14 logits
g, r [N, C] and EPS = 1e-6:

- kl_softmax = kl_div(log(softmax(g) + EPS), softmax(r), reduction="sum") / N
  = sum_i KL(softmax(r_i) || softmax(g_i) + EPS) / N
- kl_sigmoid = the same with element-wise sigmoid in place of softmax (no 1 - p term).

Computed in float64 (audioldm_eval works in the logits' float32; the two agree to ~1e-6
relative). Pairing by file name is the caller's job: row i of both inputs is the same clip.
"""

from __future__ import annotations

import torch
from torch.nn.functional import kl_div
from torchmetrics import Metric

EPS = 1e-6


class PairedKL(Metric):
    """Mean per-pair KL(reference || generated) over all pairs seen, softmax and sigmoid forms."""

    full_state_update = False
    is_differentiable = False
    higher_is_better = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("softmax_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("sigmoid_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, gen_logits: torch.Tensor, ref_logits: torch.Tensor) -> None:
        """Logits [B, C] each; row i of both belongs to the same clip id."""
        if gen_logits.shape != ref_logits.shape or gen_logits.ndim != 2:
            shapes = f"{list(gen_logits.shape)} and {list(ref_logits.shape)}"
            raise ValueError(f"expected two [B, C] logit tensors, got {shapes}")
        g, r = gen_logits.detach().double(), ref_logits.detach().double()
        self.softmax_sum += kl_div((g.softmax(dim=1) + EPS).log(), r.softmax(dim=1), reduction="sum")
        self.sigmoid_sum += kl_div((g.sigmoid() + EPS).log(), r.sigmoid(), reduction="sum")
        self.count += g.shape[0]

    def compute(self) -> dict[str, torch.Tensor]:
        """{"kl_softmax", "kl_sigmoid"}: float64 scalars."""
        if int(self.count) == 0:
            raise ValueError("PairedKL has seen no pairs")
        n = self.count.double()
        return {"kl_softmax": self.softmax_sum / n, "kl_sigmoid": self.sigmoid_sum / n}
