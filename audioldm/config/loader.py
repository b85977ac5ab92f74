"""Load an experiment config: YAML file(s) + ``key=value`` overrides, validated before any work.

A YAML file may name ``base: other.yaml`` (a path relative to itself, or a list of them) to
start from another file. Sources merge in order base -> file -> command line over the typed
schema; the first unknown key, wrong type or missing value raises ``ConfigError`` naming the
key and the source it came from, with a suggestion for a likely typo.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Sequence

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from audioldm import constraints
from audioldm.config.model_sections import KNOWN_STAGES, model_config_class
from audioldm.config.schema import ExperimentConfig


class ConfigError(ValueError):
    """A config that cannot be used; the message names the key and the file."""


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> DictConfig:
    """Return the validated, typed config for ``path`` with command-line ``overrides`` applied."""
    sources = _read_chain(Path(path), seen=())
    sources.append(("command line", _parse_overrides(overrides)))
    return _validate(sources, str(path))


def load_config_dict(values: dict, source: str) -> DictConfig:
    """Validate a config stored as plain containers (e.g. in a checkpoint) the same way."""
    return _validate([(source, OmegaConf.create(values))], source)


def _validate(sources: list[tuple[str, DictConfig]], where: str) -> DictConfig:
    stage = _pick_stage(sources)
    config = OmegaConf.structured(ExperimentConfig)
    config.model = OmegaConf.structured(model_config_class(stage))
    for name, source in sources:
        try:
            config = OmegaConf.merge(config, source)
        except (ConfigKeyError, ValidationError) as e:
            raise ConfigError(f"{name}: {_describe(e, config)}") from None
    if config.data.get("shards") and OmegaConf.is_missing(config.data, "train_manifest"):
        config.data.train_manifest = None  # training streams from the shards
    if stage == "ldm" and config.get("init_from"):  # the whole AudioLDM brings its own VAE and CLAP
        for key in ("vae_ckpt", "clap_ckpt"):
            if OmegaConf.is_missing(config.model, key):
                config.model[key] = None
    _check_ranges(config, where)
    missing = sorted(OmegaConf.missing_keys(config))
    if missing:
        raise ConfigError(
            f"{where}: required key(s) not set: {', '.join(missing)} "
            f"(set them in the file or as key=value on the command line)"
        )
    try:
        OmegaConf.resolve(config)
    except OmegaConfBaseException as e:
        raise ConfigError(f"{where}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    return config


def _check_ranges(config: DictConfig, where: str) -> None:
    """The constraints declared on the fields (``audioldm.constraints``), then the rules that span sections."""
    try:
        constraints.check(config)
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    if config.stage == "vocoder" and config.optim.decay != "constant":
        raise ConfigError(
            f"{where}: optim.decay={config.optim.decay} does not apply to the vocoder, whose learning "
            f"rates decay by model.lr_decay once per epoch (HiFi-GAN's schedule)"
        )
    condition = OmegaConf.select(config, "model.condition", default="film_clap")
    if config.stage == "ldm" and condition != "film_clap":
        if config.model.text_condition_prob > 0:
            raise ConfigError(
                f"{where}: model.text_condition_prob={config.model.text_condition_prob} mixes CLAP audio and text "
                f"embeddings, which only film_clap takes; model.condition={condition} conditions on captions "
                f"always (set model.text_condition_prob=0)"
            )
        if OmegaConf.select(config, "model.unet.condition_init_std") is not None:
            raise ConfigError(
                f"{where}: model.unet.condition_init_std initialises the FiLM projection, which "
                f"model.condition={condition} has not (set it to null)"
            )
    if config.trainer.max_steps == 0:
        raise ConfigError(f"{where}: trainer.max_steps=0 trains nothing (a positive step count, or -1 for no limit)")
    if OmegaConf.select(config, "optim.decay", default=None) == "cosine" and config.trainer.max_steps <= 0:
        raise ConfigError(
            f"{where}: optim.decay=cosine needs trainer.max_steps (the step its cosine ends at), "
            f"got {config.trainer.max_steps}"
        )


def config_to_dict(config: DictConfig) -> dict:
    """The resolved config as plain Python containers (what checkpoints and hparams store)."""
    return OmegaConf.to_container(config, resolve=True)


def _read_chain(path: Path, seen: tuple[Path, ...]) -> list[tuple[str, DictConfig]]:
    """[(file name, its config without 'base')] for ``path`` and its bases, bases first."""
    path = path.resolve() if path.exists() else path
    if path in seen:
        raise ConfigError(f"{path}: circular 'base' chain: {' -> '.join(map(str, seen + (path,)))}")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({yaml_problem(e)})") from None
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(raw).__name__}")
    bases = raw.pop("base", None) or []
    sources: list[tuple[str, DictConfig]] = []
    for base in [bases] if isinstance(bases, str) else bases:
        sources.extend(_read_chain(path.parent / base, seen + (path,)))
    sources.append((str(path), OmegaConf.create(raw)))
    return sources


def yaml_problem(error: yaml.YAMLError) -> str:
    """PyYAML's complaint in one line, with where it is: "found character '\\t' ... at line 3, column 1"."""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    mark = getattr(error, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{context + ': ' if context else ''}{problem}{where}"


def _parse_overrides(overrides: Sequence[str]) -> DictConfig:
    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"command line: override {item!r} must look like key=value")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except OmegaConfBaseException as e:
        raise ConfigError(f"command line: cannot parse overrides ({str(e).splitlines()[0]})") from None


def _pick_stage(sources: list[tuple[str, DictConfig]]) -> str:
    stage = None
    for _, source in sources:
        stage = source.get("stage", stage)
    where = sources[-2][0] if len(sources) > 1 else sources[0][0]
    if stage is None:
        raise ConfigError(f"{where}: required key 'stage' not set (one of {', '.join(KNOWN_STAGES)})")
    if stage not in KNOWN_STAGES:
        raise ConfigError(f"{where}: stage {stage!r} is unknown (one of {', '.join(KNOWN_STAGES)})")
    return stage


def _describe(error: OmegaConfBaseException, config: DictConfig) -> str:
    key = getattr(error, "full_key", None) or "?"
    if isinstance(error, ConfigKeyError):
        parent_key, _, leaf = key.rpartition(".")
        parent = OmegaConf.select(config, parent_key) if parent_key else config
        options = list(parent.keys()) if isinstance(parent, DictConfig) else []
        close = difflib.get_close_matches(leaf, options, n=1)
        hint = f" (did you mean '{'.'.join(filter(None, [parent_key, close[0]]))}'?)" if close else ""
        return f"unknown key '{key}'{hint}"
    reason = str(error).splitlines()[0]
    return f"bad value for '{key}': {reason}"
