"""Build the Lightning Trainer for a validated config and run it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch.utils.tensorboard.summary import hparams

from audioldm.config.loader import config_to_dict
from lightning_modules.callbacks import GradNormLogger, SkippedClipsLogger, StageCheckpoint, TextProgress
from lightning_modules.checkpoint_io import AtomicCheckpointIO
from lightning_modules.media import MediaLogger
from lightning_modules.resume import ResumeState
from lightning_modules.stages import build_stage


def make_trainer(config: DictConfig, module: pl.LightningModule) -> pl.Trainer:
    """Trainer with TensorBoard logging, checkpoints under <output_dir>/<name>/version_N/checkpoints.

    Stages with manual optimisation (GANs) clip their own gradients (``StageModule.clip_manual``),
    so ``trainer.gradient_clip_val`` is not handed to Lightning for them.
    """
    logger = TensorBoardLogger(
        save_dir=config.output_dir, name=config.name, default_hp_metric=False, version=resumed_version(config)
    )
    c = config.checkpoint
    checkpoint = StageCheckpoint(
        os.path.join(logger.log_dir, "checkpoints"),
        every_n_train_steps=c.every_n_train_steps,
        every_n_epochs=c.every_n_epochs if c.every_n_train_steps is None else None,
        save_last=c.save_last,
        save_top_k=c.save_top_k,
        monitor=c.monitor,
        mode=c.mode,
    )
    trainer_args = {k: v for k, v in OmegaConf.to_container(config.trainer).items() if v is not None}
    if not module.automatic_optimization:
        trainer_args.pop("gradient_clip_val", None)
    progress = []
    if trainer_args.get("enable_progress_bar", True) and not sys.stdout.isatty():
        # the progress bar shows nothing in a log file: plain lines instead
        trainer_args["enable_progress_bar"] = False
        progress = [TextProgress(config.name)]
    trainer = pl.Trainer(
        **trainer_args,
        logger=logger,
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,
        callbacks=[
            checkpoint,
            ResumeState(),
            LearningRateMonitor(logging_interval="step"),
            GradNormLogger(),
            SkippedClipsLogger(),
            MediaLogger(),
            *progress,
            *stage_callbacks(config),
        ],
    )
    log_config(logger, config)
    return trainer


def stage_callbacks(config: DictConfig) -> list[pl.Callback]:
    """Callbacks only some stages use: the LDM's generation metrics at validation."""
    if config.stage == "ldm" and config.model.val_eval_clips > 0:
        from lightning_modules.generation_metrics import GenerationMetrics

        return [GenerationMetrics(config.model.val_eval_clips, config.model.val_eval_vggish)]
    return []


def resumed_version(config: DictConfig) -> str | None:
    """When resuming from this run's own <output_dir>/<name>/version_N/checkpoints/*.ckpt, keep
    logging and checkpointing in version_N; otherwise None (a new version)."""
    if not config.resume:
        return None
    run_dir = Path(config.resume).resolve().parent.parent
    if (
        Path(config.resume).resolve().parent.name == "checkpoints"
        and run_dir.parent == Path(config.output_dir, config.name).resolve()
        and run_dir.name.startswith("version_")
    ):
        return run_dir.name
    return None


@rank_zero_only
def log_config(logger: TensorBoardLogger, config: DictConfig) -> None:
    """The resolved config as hparams.yaml and as TensorBoard's HPARAMS table (rank 0 only)."""
    logger.log_hyperparams(config_to_dict(config))  # hparams.yaml (the hparams summary needs metrics)
    flat = {
        k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in _flatten(config_to_dict(config)).items()
    }
    for summary in hparams(flat, {}):
        logger.experiment.file_writer.add_summary(summary)


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        out.update(_flatten(value, f"{name}/") if isinstance(value, dict) else {name: value})
    return out


class Stopped(RuntimeError):
    """Training stopped by SIGTERM (e.g. a preempted SLURM job); the state at that step is saved."""


def fit(config: DictConfig) -> pl.Trainer:
    """Seed, build the stage, read its data, train (continuing from ``config.resume`` when set). The data is read
    before the logger exists, so a manifest that fails leaves no empty ``version_N`` behind. SIGTERM saves the
    step it stopped at and raises ``Stopped``."""
    pl.seed_everything(config.seed, workers=True)
    module, datamodule = build_stage(config)
    datamodule.setup("fit")
    trainer = make_trainer(config, module)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=config.resume)
    except SIGTERMException:
        saved = trainer.checkpoint_callback.final_path
        raise Stopped(
            f"stopped by SIGTERM at step {trainer.global_step}; that step is saved in {saved} (continue with "
            f"resume={saved})"
        ) from None
    return trainer
