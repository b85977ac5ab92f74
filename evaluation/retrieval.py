"""Text-audio retrieval metrics for paired embeddings (caption i describes clip i).

For each query the single relevant item's rank r (0 = best) gives recall@k = mean(r < k) and
mAP@10 = mean(1 / (r + 1) if r < 10 else 0) (average precision with one relevant item).
"""

from __future__ import annotations

import torch


def ranks_of_matches(similarity: torch.Tensor) -> torch.Tensor:
    """similarity [Q, N] with query i's match at column i -> rank of that match per query [Q]."""
    target = similarity.diagonal().unsqueeze(1)
    return (similarity > target).sum(dim=1)


def retrieval_metrics(text: torch.Tensor, audio: torch.Tensor, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """text, audio [N, D] L2-normalised -> {t2a_R@k, a2t_R@k, t2a_mAP@10, a2t_mAP@10}."""
    similarity = text.float() @ audio.float().T
    out: dict[str, float] = {}
    for name, sim in (("t2a", similarity), ("a2t", similarity.T)):
        ranks = ranks_of_matches(sim)
        for k in ks:
            out[f"{name}_R@{k}"] = float((ranks < k).float().mean())
        out[f"{name}_mAP@10"] = float(torch.where(ranks < 10, 1.0 / (ranks + 1).float(), 0.0).mean())
    return out


def zero_shot_correct(
    audio: torch.Tensor, class_text: torch.Tensor, labels: list[list[str]], classes: list[str]
) -> torch.Tensor:
    """audio [B, D], class_text [C, D] -> [B] 1.0 where the top class is one of the clip's labels.
    Clips without a label among ``classes`` count as NaN (left out of the accuracy)."""
    predicted = (audio.float() @ class_text.float().T).argmax(dim=1).tolist()
    index = {c: i for i, c in enumerate(classes)}
    result = []
    for p, clip_labels in zip(predicted, labels):
        known = [index[label] for label in clip_labels if label in index]
        result.append(float(p in known) if known else float("nan"))
    return torch.tensor(result)
