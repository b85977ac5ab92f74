"""Train one stage: python train.py --config configs/demo/vae.yaml [key=value ...]

The config is validated completely (unknown keys, wrong types, missing values, an unknown stage,
files that do not exist) before any data is read or any model is built.
"""

from __future__ import annotations

import argparse
import os
import sys

from audioldm.safe_output import main_guard

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here downloads, by design
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML experiment config")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. data.batch_size=4 resume=last.ckpt")
    parser.add_argument("--print-config", action="store_true", help="print the resolved, validated config and exit")
    return parser.parse_intermixed_args(argv)  # key=value overrides may come before or after --config


@main_guard  # a full disk or a denied permission (checkpoints, logs): one line, exit 2
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from audioldm.config import ConfigError, load_config
    from audioldm.safe_output import OutputError, check_output_folder

    try:
        config = load_config(args.config, args.overrides)
        check_paths(config)
        check_output_folder(config.output_dir, "output_dir: ")
        if config.resume:
            check_resume(config)
    except (ConfigError, OutputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.print_config:
        from omegaconf import OmegaConf

        print(OmegaConf.to_yaml(config), end="")
        return 0
    from audioldm.checkpoint import CheckpointError
    from data.latent_cache import LatentCacheError
    from data.manifest import ManifestError
    from data.shard_dataset import ShardError
    from lightning_modules.trainer import Stopped, fit

    try:
        fit(config)
    except (CheckpointError, LatentCacheError, ManifestError, ShardError) as e:
        print(f"error: {last_line(e)}", file=sys.stderr)
        return 2
    except Stopped as e:  # SIGTERM (a preempted job): the exact step is saved; not a finished run
        print(f"train: {e}", file=sys.stderr)
        return 143
    return 0


def last_line(error: Exception) -> str:
    """The error's own message: a DataLoader worker re-raises it with the worker's traceback before it."""
    text = str(error)
    if "Original Traceback" not in text:
        return text
    last = text.rstrip().splitlines()[-1]
    return last.split(": ", 1)[1] if last.startswith(type(error).__name__ + ": ") else last


def check_paths(config) -> None:
    """Files the run needs must exist before anything starts."""
    from audioldm.config import ConfigError

    keys = ["data.val_manifest", "data.shards", "resume", "init_from"]
    if not config.data.shards:  # with shards the training manifest is not read
        keys.insert(0, "data.train_manifest")
    keys += [f"model.{k}" for k in (config.model or {}) if k.endswith("_ckpt")]  # frozen parts of the ldm
    for key in keys:
        value = config
        for part in key.split("."):
            value = value.get(part)
        folders_ok = key in ("init_from", "data.shards") or key.endswith("_ckpt")  # folders
        if value and not folders_ok and os.path.isdir(value):
            raise ConfigError(f"{key}: {value} is a directory, not a file")
        if value and not (os.path.exists(value) if folders_ok else os.path.isfile(value)):
            raise ConfigError(f"{key}: file not found: {value}")


def check_resume(config) -> None:
    """The checkpoint to resume must be this stage's, with the same mel settings."""
    from omegaconf import OmegaConf

    from audioldm.config import ConfigError
    from lightning_modules.loading import CheckpointError, check_mel, read_checkpoint

    try:
        checkpoint = read_checkpoint(config.resume)
        if checkpoint.get("stage") != config.stage:
            raise CheckpointError(
                f"{config.resume}: is a '{checkpoint.get('stage')}' checkpoint, but the config trains '{config.stage}'"
            )
        check_mel(config.resume, checkpoint["config"].get("audio", {}), OmegaConf.to_object(config.audio))
        step, limit = int(checkpoint.get("global_step", 0)), config.trainer.max_steps
        if 0 < limit <= step:
            raise CheckpointError(
                f"{config.resume}: is at step {step}, already at trainer.max_steps={limit}: nothing would be "
                f"trained; raise trainer.max_steps to go on"
            )
    except CheckpointError as e:
        raise ConfigError(f"resume: {e}") from None


if __name__ == "__main__":
    sys.exit(main())
