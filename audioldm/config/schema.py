"""The typed schema every experiment config is validated against (OmegaConf structured configs).

A YAML file may only contain keys defined here, with values of these types; the stage's own
``model`` section is validated against the dataclass its stage registers (see ``stages.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING

from audioldm.audio.mel import MelConfig
from audioldm.constraints import INF, in_range, one_of


@dataclass
class DataConfig:
    """Where the clips are and how they are batched."""

    train_manifest: Optional[str] = MISSING  # may stay unset when training streams from ``shards``
    val_manifest: Optional[str] = None  # else the manifest's split field, else a hash split
    val_fraction: float = in_range(0.1, 0.0, 1.0, "[)")  # used only when no val manifest and no val split exists
    segment_seconds: float = in_range(10.24, 0.0, INF, "()")
    val_segment_seconds: Optional[float] = in_range(None, 0.0, INF, "()")  # defaults to segment_seconds
    batch_size: int = in_range(8, 1, INF)
    val_batch_size: Optional[int] = in_range(None, 1, INF)  # defaults to batch_size
    num_workers: int = in_range(2, 0, INF)
    random_crop: bool = True
    mel_cache_dir: Optional[str] = None
    pin_memory: bool = True  # only takes effect on CUDA
    require_captions: bool = False  # drop entries without captions (CLAP needs them)
    # ldm only: read pre-encoded VAE posteriors and CLAP audio embeddings from this folder
    # (written by `python -m data.preencode`) instead of decoding audio
    latent_cache_dir: Optional[str] = None
    # train from webdataset tar shards written by `python -m data.shard_writer` (audio, or latents for the
    # ldm) instead of train_manifest; validation still reads val_manifest (none if unset)
    shards: Optional[str] = None
    shuffle_buffer: int = in_range(1000, 1, INF)  # samples mixed across shards (per worker)


@dataclass
class OptimConfig:
    lr: float = in_range(1e-4, 0.0, INF, "()")
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = in_range(0.0, 0.0, INF)
    warmup_steps: int = in_range(0, 0, INF)
    # after the warm-up: "constant", or "cosine" from lr down to lr x min_lr_ratio at the run's last step (needs
    # trainer.max_steps; short runs end on averaged rather than noisy weights)
    decay: str = one_of("constant", "constant", "cosine")
    min_lr_ratio: float = in_range(0.0, 0.0, 1.0)


@dataclass
class TrainerConfig:
    """A subset of ``lightning.Trainer`` arguments, passed through by name."""

    accelerator: str = "auto"
    devices: Any = "auto"  # int, list of ints or "auto"
    num_nodes: int = in_range(1, 1, INF)
    strategy: str = "auto"  # "ddp" for multi-GPU
    precision: str = "32-true"  # "bf16-mixed", "16-mixed"
    max_steps: int = in_range(-1, -1, INF)
    max_epochs: Optional[int] = in_range(None, -1, INF)
    val_check_interval: Optional[float] = None
    check_val_every_n_epoch: Optional[int] = in_range(1, 1, INF)
    limit_train_batches: Optional[float] = None
    limit_val_batches: Optional[float] = None
    log_every_n_steps: int = in_range(50, 1, INF)
    gradient_clip_val: Optional[float] = None
    accumulate_grad_batches: int = in_range(1, 1, INF)
    num_sanity_val_steps: int = in_range(2, -1, INF)
    deterministic: bool = False
    enable_progress_bar: bool = True


@dataclass
class CheckpointConfig:
    every_n_train_steps: Optional[int] = in_range(None, 1, INF)
    every_n_epochs: Optional[int] = in_range(1, 1, INF)
    save_last: bool = True
    save_top_k: int = in_range(1, -1, INF)
    monitor: Optional[str] = None
    mode: str = "min"


@dataclass
class ExperimentConfig:
    """The whole run. ``model`` is replaced by the stage's own dataclass at load time."""

    stage: str = MISSING  # clap | vae | vocoder | ldm
    name: str = MISSING  # run name: logs and checkpoints go to <output_dir>/<name>/
    seed: int = 0
    output_dir: str = "runs"
    resume: Optional[str] = None  # a checkpoint to continue from exactly
    # weights to start from (fine-tuning): ours, an original AudioLDM .ckpt, a diffusers folder, LAION-CLAP,
    # HiFi-GAN or AudioLDM VAE files; optimiser and step start fresh. Ignored when resume is set.
    init_from: Optional[str] = None
    audio: MelConfig = field(default_factory=MelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    model: Any = None
