"""CLAP stage: symmetric InfoNCE (open_clip's ``ClipLoss``, gathered across DDP ranks with
gradients) between audio and caption embeddings, with a learned temperature.

Validation gathers the embeddings of all ranks and logs text-to-audio and audio-to-text
recall@1/5/10 and mAP@10, and zero-shot accuracy over the labels present in the validation set
(each class name through ``zero_shot_template``, underscores read as spaces).
"""

from __future__ import annotations

import torch
from omegaconf import DictConfig
from open_clip.loss import ClipLoss

from audioldm.models.clap import ClapEmbedder
from evaluation.retrieval import retrieval_metrics, zero_shot_correct
from lightning_modules.stage_module import StageModule


class ClapModule(StageModule):
    """batch["waveform"] [B, N] 16 kHz + batch["caption"] list[str] -> contrastive loss."""

    stage = "clap"

    def __init__(self, config: DictConfig):
        super().__init__(config)
        self.embedder = ClapEmbedder(self.model_config, self.mel_config.sample_rate)
        self.loss_fn = make_clip_loss(0, 1)
        self._val: dict[str, list] = {}

    def embed_text(self, texts: list[str]) -> torch.Tensor:
        return self.embedder.embed_text(texts)

    def embed_audio(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.embedder.embed_audio(waveform)

    def setup(self, stage: str) -> None:
        self.loss_fn = make_clip_loss(self.trainer.global_rank, self.trainer.world_size)

    def contrastive_loss(self, waveform: torch.Tensor, captions: list[str], random_crop: bool) -> torch.Tensor:
        audio = self.embedder.embed_audio(waveform, random_crop=random_crop)
        text = self.embedder.embed_text(captions)
        return self.loss_fn(audio, text, self.embedder.logit_scale)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self.contrastive_loss(batch["waveform"], batch["caption"], random_crop=True)
        n = len(batch["caption"])
        self.log("train/loss", loss, prog_bar=True, batch_size=n)
        self.log("train/logit_scale", self.embedder.logit_scale.detach(), batch_size=n)
        return loss

    def on_validation_epoch_start(self) -> None:
        classes = (
            sorted({label for e in self.trainer.datamodule.val_set.entries for label in e.labels})
            if getattr(self.trainer, "datamodule", None) is not None and self.trainer.datamodule.val_set
            else []
        )
        template = self.model_config.zero_shot_template
        prompts = [template.format(label=c.replace("_", " ")) for c in classes]
        self._val = {
            "audio": [],
            "text": [],
            "correct": [],
            "classes": classes,
            "class_text": self.embedder.embed_text(prompts) if prompts else None,
        }

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        audio = self.embedder.embed_audio(batch["waveform"])
        text = self.embedder.embed_text(batch["caption"])
        loss = self.loss_fn(audio, text, self.embedder.logit_scale)
        self.log("val/loss", loss, sync_dist=True, batch_size=audio.shape[0])
        self._val["audio"].append(audio)
        self._val["text"].append(text)
        if self._val["class_text"] is not None:
            self._val["correct"].append(
                zero_shot_correct(audio, self._val["class_text"], batch["labels"], self._val["classes"]).to(
                    audio.device
                )
            )

    def on_validation_epoch_end(self) -> None:
        if not self._val.get("audio"):
            return
        audio = self.all_gather(torch.cat(self._val["audio"])).reshape(-1, self._val["audio"][0].shape[-1])
        text = self.all_gather(torch.cat(self._val["text"])).reshape(-1, audio.shape[-1])
        metrics = {f"val/{k}": v for k, v in retrieval_metrics(text, audio).items()}
        if self._val["correct"]:
            correct = self.all_gather(torch.cat(self._val["correct"])).reshape(-1)
            correct = correct[~torch.isnan(correct)]
            if correct.numel():
                metrics["val/zeroshot_acc"] = float(correct.mean())
        self.log_dict(metrics, rank_zero_only=True)
        self._val = {}

    def configure_optimizers(self):
        return self.make_optimizer(self.embedder.parameters())


def make_clip_loss(rank: int, world_size: int) -> ClipLoss:
    """Symmetric InfoNCE over the global batch: features of all ranks are gathered (with
    gradients), so every rank computes the loss of the whole batch."""
    return ClipLoss(gather_with_grad=world_size > 1, cache_labels=True, rank=rank, world_size=world_size)
