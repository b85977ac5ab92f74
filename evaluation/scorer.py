"""Score generated clips against reference clips the way papers do (audioldm_eval's protocol).

Backbone ``paper``: FAD on VGGish frame embeddings (no PCA, final ReLU removed); FD on PANNs CNN14
(16 kHz) 2048-d clip embeddings; KL (softmax and sigmoid forms) between the CNN14 outputs of clips
paired by key; IS over the CNN14 softmax of the generated clips (10 splits). Backbone ``clap``: FD
on CLAP audio embeddings instead (offline, not comparable with papers). With a CLAP and captions,
also the CLAP score (mean text-audio cosine of the generated clips).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from tqdm import tqdm

from audioldm.audio.io import AudioReadError
from evaluation.backbones.clap import ClapBackbone
from evaluation.clap_score import ClapScore
from evaluation.clip_sets import Clip, load_eval_audio, pair
from evaluation.frechet import FrechetDistance
from evaluation.inception_score import InceptionScore
from evaluation.kl import PairedKL

BACKBONES = ("paper", "clap")
log = logging.getLogger(__name__)


@dataclass
class Backbones:
    """What a run needs, loaded before any clip is read (a missing file fails at once)."""

    vggish: Any = None
    cnn14: Any = None
    clap: ClapBackbone | None = None

    @classmethod
    def load(cls, backbone: str, weights_dir: str, clap: ClapBackbone | None, device: str = "cpu") -> "Backbones":
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r} (one of {', '.join(BACKBONES)})")
        if backbone == "clap":
            if clap is None:
                raise ValueError("backbone 'clap' needs a CLAP checkpoint (--clap-ckpt)")
            return cls(clap=clap)
        from evaluation.backbones.panns import load_cnn14
        from evaluation.backbones.vggish import load_vggish

        return cls(load_vggish(weights_dir, device), load_cnn14(weights_dir, device), clap)


@torch.no_grad()
def score(
    generated: list[Clip], reference: list[Clip], backbones: Backbones, device: str = "cpu", progress: bool = True
) -> dict[str, Any]:
    """Metrics of ``generated`` against ``reference`` and how the two sets paired."""
    if not generated or not reference:
        raise ValueError(f"nothing to compare: {len(generated)} generated and {len(reference)} reference clips")
    pairing = pair(generated, reference)
    order = {c.key: i for i, c in enumerate(sorted(generated, key=lambda c: c.key))}
    paper = backbones.vggish is not None
    if paper:
        metrics = {"FAD": FrechetDistance(128), "FD": FrechetDistance(2048), "IS": InceptionScore()}
    else:
        metrics = {"FD_clap": FrechetDistance(backbones.clap.dim)}
    clap_score = ClapScore() if backbones.clap is not None and any(c.caption for c in generated) else None
    logits: dict[bool, dict[str, torch.Tensor]] = {False: {}, True: {}}
    skipped = {"generated": 0, "reference": 0}
    read_keys: dict[bool, set[str]] = {False: set(), True: set()}
    for real, clips in ((False, generated), (True, reference)):
        name = "reference" if real else "generated"
        for clip in tqdm(clips, desc=f"embedding {name} clips", unit="clip", disable=not progress):
            try:
                wave = load_eval_audio(clip.path).to(device)
            except AudioReadError as e:
                log.warning("skipping unreadable clip %s", e)
                skipped[name] += 1
                continue
            read_keys[real].add(clip.key)
            if paper:
                metrics["FAD"].update(backbones.vggish.embed(wave).double().cpu(), real=real)
                features = backbones.cnn14(wave[None])
                metrics["FD"].update(features["2048"].double().cpu(), real=real)
                logits[real][clip.key] = features["logits"][0].cpu()
                if not real:
                    metrics["IS"].update(features["logits"].cpu(), ids=torch.tensor([order[clip.key]]))
            scored = not real and clap_score is not None and bool(clip.caption)
            if not paper or scored:
                audio = backbones.clap.embed_audio(wave).cpu()
                if not paper:
                    metrics["FD_clap"].update(audio.double(), real=real)
                if scored:
                    clap_score.update(audio, backbones.clap.embed_text([clip.caption]).cpu())
    result: dict[str, Any] = {"skipped_metrics": {}}
    for name, metric in metrics.items():
        try:
            value = metric.compute()
        except ValueError as e:  # too few clips for this metric (IS needs one per split, FD two per set)
            result["skipped_metrics"][name] = str(e)
            continue
        if name == "IS":
            result.update({"IS": float(value["is_mean"]), "IS_std": float(value["is_std"])})
        else:
            result[name] = float(value)
    paired = [k for k in pairing.paired if k in logits[False] and k in logits[True]]
    if paper and paired:
        kl = PairedKL()
        kl.update(torch.stack([logits[False][k] for k in paired]), torch.stack([logits[True][k] for k in paired]))
        values = kl.compute()
        result.update({"KL_softmax": float(values["kl_softmax"]), "KL_sigmoid": float(values["kl_sigmoid"])})
    if clap_score is not None:
        result["CLAP_score"] = float(clap_score.compute())
    # every count is of clips actually scored: unreadable ones are counted apart
    read = read_keys
    result.update(
        {
            "clips_generated": len(read[False]),
            "clips_reference": len(read[True]),
            "pairs": sum(k in read[False] and k in read[True] for k in pairing.paired),
            "generated_only": len(read[False] - read[True]),
            "reference_only": len(read[True] - read[False]),
            "unreadable_generated": skipped["generated"],
            "unreadable_reference": skipped["reference"],
        }
    )
    return result
