"""Configs: a typo, a wrong type or a missing value fails before any work, naming key and file."""
from __future__ import annotations

from pathlib import Path

import pytest

from audioldm.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_every_shipped_config_validates():
    for path in sorted((REPO / "configs").rglob("*.yaml")):
        if path.parent.name == "data":
            continue
        required = {"ldm": ["model.vae_ckpt=v.ckpt", "model.clap_ckpt=c.ckpt"],
                    "lcm": ["model.teacher_ckpt=t.ckpt"]}.get(path.name[:3], [])
        config = load_config(path, ["data.train_manifest=x.jsonl", *required])
        assert config.stage in ("clap", "vae", "vocoder", "ldm", "lcm"), path


def test_typo_names_key_file_and_suggestion(tmp_path):
    cfg = write(tmp_path / "x.yaml", "stage: vae\nname: t\ndata:\n  train_manifest: m.jsonl\n  batch_sise: 4\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    message = str(err.value)
    assert str(cfg) in message and "data.batch_sise" in message and "data.batch_size" in message
    assert "\n" not in message


def test_typo_in_stage_model_section(tmp_path):
    cfg = write(tmp_path / "x.yaml", "stage: vae\nname: t\ndata: {train_manifest: m}\nmodel: {latent_chanels: 4}\n")
    with pytest.raises(ConfigError, match=r"model\.latent_chanels.*model\.latent_channels"):
        load_config(cfg)


def test_wrong_type_names_key(tmp_path):
    cfg = write(tmp_path / "x.yaml", "stage: vae\nname: t\ndata: {train_manifest: m, batch_size: many}\n")
    with pytest.raises(ConfigError, match=r"x\.yaml: bad value for 'data\.batch_size'"):
        load_config(cfg)


def test_override_typo_names_command_line(tmp_path):
    cfg = write(tmp_path / "x.yaml", "stage: vae\nname: t\ndata: {train_manifest: m}\n")
    with pytest.raises(ConfigError, match=r"command line: unknown key 'trainer\.max_step'.*max_steps"):
        load_config(cfg, ["trainer.max_step=3"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(cfg, ["trainer.max_steps"])


def test_missing_required_and_unknown_stage(tmp_path):
    with pytest.raises(ConfigError, match="data.train_manifest"):
        load_config(write(tmp_path / "a.yaml", "stage: vae\nname: t\n"))
    with pytest.raises(ConfigError, match="stage 'vea' is unknown"):
        load_config(write(tmp_path / "b.yaml", "stage: vea\nname: t\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_ldm_requires_its_frozen_stage_checkpoints(tmp_path):
    cfg = write(tmp_path / "x.yaml", "stage: ldm\nname: t\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert "data.train_manifest, model.clap_ckpt, model.vae_ckpt" in str(err.value) and "\n" not in str(err.value)


def test_base_chain_and_overrides_merge_in_order(tmp_path):
    write(tmp_path / "base.yaml", "stage: vae\nname: base\nseed: 1\ndata: {train_manifest: m, batch_size: 2}\n")
    (tmp_path / "sub").mkdir()
    child = write(tmp_path / "sub" / "child.yaml", "base: ../base.yaml\nname: child\ndata: {batch_size: 3}\n")
    config = load_config(child, ["seed=7", "trainer.devices=[0,1]"])
    assert (config.name, config.seed, config.data.batch_size, config.data.train_manifest) == ("child", 7, 3, "m")
    assert list(config.trainer.devices) == [0, 1]
    assert config.audio.n_mels == 64 and config.model.latent_channels == 8  # schema defaults


def test_circular_base_is_reported(tmp_path):
    write(tmp_path / "a.yaml", "base: b.yaml\nstage: vae\n")
    write(tmp_path / "b.yaml", "base: a.yaml\n")
    with pytest.raises(ConfigError, match="circular"):
        load_config(tmp_path / "a.yaml")
