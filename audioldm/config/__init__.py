"""Typed experiment configs: schema, stage registry and the validating loader."""

from audioldm.config.loader import ConfigError, config_to_dict, load_config, load_config_dict
from audioldm.config.model_sections import KNOWN_STAGES
from audioldm.config.schema import CheckpointConfig, DataConfig, ExperimentConfig, OptimConfig, TrainerConfig

__all__ = [
    "ConfigError",
    "config_to_dict",
    "load_config",
    "load_config_dict",
    "CheckpointConfig",
    "DataConfig",
    "ExperimentConfig",
    "OptimConfig",
    "TrainerConfig",
    "KNOWN_STAGES",
]
