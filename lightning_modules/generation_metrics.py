"""LDM validation with the evaluation metrics: at each validation, the captions of a small fixed
set of validation clips are generated with the EMA UNet and scored against those clips with the
same metric classes ``evaluate.py`` uses: a Frechet distance (VGGish FAD when
``model.val_eval_vggish`` names the folder holding ``vggish-10086976.pth``, else an FD on the
LDM's own CLAP audio embeddings) and the CLAP score. Logged as ``val/fad`` or ``val/fd_clap``, and
``val/clap_score``. Each DDP rank generates its share of the set; the metric states are reduced.
"""

from __future__ import annotations

import logging

import pytorch_lightning as pl
import torch

from audioldm.pipeline.text_to_audio import SamplingOptions, TextToAudio
from evaluation.backbones.clap import ClapBackbone
from evaluation.clap_score import ClapScore
from evaluation.clip_sets import load_eval_audio
from evaluation.frechet import FrechetDistance

log = logging.getLogger(__name__)


class GenerationMetrics(pl.Callback):
    def __init__(self, clips: int, vggish_dir: str | None = None):
        self.clips = clips
        self.vggish_dir = vggish_dir
        self._vggish = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.vggish_dir:  # a missing file fails before training starts
            from evaluation.backbones.vggish import load_vggish

            self._vggish = load_vggish(self.vggish_dir)

    def fixed_set(self, trainer: pl.Trainer) -> list:
        """The first ``clips`` validation entries with a caption (the same every validation)."""
        val_set = getattr(getattr(trainer, "datamodule", None), "val_set", None)
        entries = [e for e in (val_set.entries if val_set is not None else []) if e.captions]
        return entries[: self.clips]

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        entries = self.fixed_set(trainer)
        if not entries:
            return
        m = pl_module.model_config
        mine = entries[trainer.global_rank :: trainer.world_size]
        clap = ClapBackbone(pl_module.model.clap, "the LDM's CLAP")
        vggish = self._vggish.to(pl_module.device) if self._vggish is not None else None
        frechet = FrechetDistance(128 if vggish is not None else clap.dim).to(pl_module.device)
        clap_score = ClapScore().to(pl_module.device)
        pipe = TextToAudio(pl_module.model, use_ema=True)
        options = SamplingOptions(steps=m.val_steps, sampler=m.val_sampler, guidance=m.val_guidance)
        samples = int(m.val_seconds * pl_module.mel_config.sample_rate)
        for start in range(0, len(mine), 8):
            chunk = mine[start : start + 8]
            texts = [e.captions[0] for e in chunk]
            seeds = [m.val_seed + trainer.global_rank + (start + j) * trainer.world_size for j in range(len(chunk))]
            generated = pipe.text_to_audio(texts, m.val_seconds, options, seeds=seeds).waveform
            references = [load_eval_audio(e.path)[:samples].to(pl_module.device) for e in chunk]
            audio = clap.embed_audio(generated)
            clap_score.update(audio, clap.embed_text(texts))
            for wave, real in [(w, False) for w in generated] + [(w, True) for w in references]:
                embedding = vggish.embed(wave) if vggish is not None else clap.embed_audio(wave)
                frechet.update(embedding.double(), real=real)
        name = "val/fad" if vggish is not None else "val/fd_clap"
        values = {"val/clap_score": clap_score.compute().float()}
        try:
            values[name] = frechet.compute().float()
        except ValueError as e:  # too few embeddings (e.g. clips shorter than one VGGish frame)
            log.warning("%s not computed: %s", name, e)
        pl_module.log_dict(values, rank_zero_only=True)
