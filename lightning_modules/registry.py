"""Stage name -> (LightningModule, DataModule). Explicit, no import strings."""
from __future__ import annotations

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from audioldm.config.stages import model_config_class


def build_stage(config: DictConfig) -> tuple[pl.LightningModule, pl.LightningDataModule]:
    """Build the module and data module for ``config.stage`` (already validated)."""
    model_config_class(config.stage)  # raises StageNotImplementedError for a stage not built yet
    if config.stage == "vae":
        from data.datamodule import VaeDataModule
        from lightning_modules.vae import VaeModule

        return VaeModule(config), VaeDataModule(to_object(config.data), to_object(config.audio))
    raise AssertionError(f"stage '{config.stage}' has a config class but no module")


def to_object(node: DictConfig):
    """A config section as its dataclass instance (methods and properties available)."""
    return OmegaConf.to_object(node)
