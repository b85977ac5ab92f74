"""Stage name -> (LightningModule, DataModule). Explicit, no import strings."""

from __future__ import annotations

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from audioldm.config.model_sections import model_config_class


def module_class(stage: str) -> type[pl.LightningModule]:
    """The LightningModule class of ``stage`` ."""
    model_config_class(stage)
    if stage == "vae":
        from lightning_modules.vae import VaeModule

        return VaeModule
    if stage == "clap":
        from lightning_modules.clap import ClapModule

        return ClapModule
    if stage == "vocoder":
        from lightning_modules.vocoder import VocoderModule

        return VocoderModule
    if stage == "ldm":
        from lightning_modules.ldm import LdmModule

        return LdmModule
    if stage == "lcm":
        from lightning_modules.lcm import LcmModule

        return LcmModule
    raise AssertionError(f"stage '{stage}' has a config class but no module")


def datamodule_class(stage: str) -> type[pl.LightningDataModule]:
    from data.datamodule import ClapDataModule, LdmDataModule, VaeDataModule, VocoderDataModule

    return {
        "vae": VaeDataModule,
        "clap": ClapDataModule,
        "vocoder": VocoderDataModule,
        "ldm": LdmDataModule,
        "lcm": LdmDataModule,
    }[stage]


def build_stage(config: DictConfig) -> tuple[pl.LightningModule, pl.LightningDataModule]:
    """Build the module and data module for ``config.stage`` (already validated)."""
    module = module_class(config.stage)(config)
    if config.get("init_from") and not config.get("resume") and config.stage != "ldm":  # the ldm reads it itself
        from lightning_modules.init_from import apply_init_from

        apply_init_from(module, config)
    data_config = to_object(config.data)
    if getattr(getattr(module, "model", None), "condition", "film_clap") != "film_clap":
        data_config.require_captions = True  # a cross-attention LDM conditions on captions only
    data = datamodule_class(config.stage)(data_config, to_object(config.audio), seed=config.seed)
    return module, data


def to_object(node: DictConfig):
    """A config section as its dataclass instance (methods and properties available)."""
    return OmegaConf.to_object(node)
