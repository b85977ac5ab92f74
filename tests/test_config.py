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
        required = {
            "ldm": ["model.vae_ckpt=v.ckpt", "model.clap_ckpt=c.ckpt", "model.text_encoder_path=t5/", "init_from=i"],
            "lcm": ["model.teacher_ckpt=t.ckpt"],
        }.get(path.name[:3], [])
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


def test_ldm_requires_its_frozen_part_checkpoints(tmp_path):
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


def config_dataclasses() -> list[type]:
    """Every dataclass a config is validated against: the schema's sections, each stage's model section, and the
    dataclasses nested in them (e.g. model.unet)."""
    import dataclasses
    import typing

    from audioldm.config.model_sections import KNOWN_STAGES, model_config_class
    from audioldm.config.schema import ExperimentConfig

    found, todo = [], [ExperimentConfig, *(model_config_class(s) for s in KNOWN_STAGES)]
    while todo:
        cls = todo.pop()
        if cls in found:
            continue
        found.append(cls)
        hints = typing.get_type_hints(cls)
        todo += [hints[f.name] for f in dataclasses.fields(cls) if dataclasses.is_dataclass(hints[f.name])]
    return found


def test_every_constraint_names_a_real_field():
    """Constraints are field metadata (audioldm/constraints.py): each sits on a real field by construction, and
    the sibling fields they name (at_most, only_with) exist; ranges are ordered, choices are not empty."""
    import dataclasses

    from audioldm.constraints import declared

    classes = config_dataclasses()
    names = {c.__name__ for c in classes}
    assert {
        "ExperimentConfig",
        "DataConfig",
        "OptimConfig",
        "TrainerConfig",
        "CheckpointConfig",
        "MelConfig",
        "VaeConfig",
        "ClapConfig",
        "VocoderConfig",
        "LdmConfig",
        "LcmConfig",
        "UnetConfig",
    } <= names
    count = 0
    for cls in classes:
        fields = {f.name for f in dataclasses.fields(cls)}
        for name, rules in declared(cls):
            count += 1
            assert set(rules) <= {"range", "choices", "only_with", "at_most"}, (cls, name)
            for sibling in (rules.get("at_most"), rules.get("only_with", (None,))[0]):
                assert sibling is None or sibling in fields, f"{cls.__name__}.{name} names {sibling!r}: no such field"
            if "range" in rules:
                low, high, ends = rules["range"]
                assert low <= high and len(ends) == 2 and ends[0] in "[(" and ends[1] in "])", (cls, name)
            if "choices" in rules:
                default = next(f.default for f in dataclasses.fields(cls) if f.name == name)
                assert rules["choices"] and default in rules["choices"], (cls, name)
    assert count >= 49  # the 49 dotted keys of the tables this replaced, and more


@pytest.mark.parametrize(
    "override,message",
    [
        ("model.text_condition_prob=1.5", "model.text_condition_prob=1.5 is out of range (must be in [0.0, 1.0])"),
        ("data.val_fraction=1.0", "data.val_fraction=1.0 is out of range (must be in [0.0, 1.0))"),
        ("optim.lr=0", "optim.lr=0.0 is out of range (must be in (0.0, inf))"),
        ("audio.n_mels=0", "audio.n_mels=0 is out of range (must be in [1, inf])"),
        ("model.unet.prediction_type=x0", "model.unet.prediction_type='x0' is unknown (one of epsilon, v_prediction)"),
        ("optim.decay=linear", "optim.decay='linear' is unknown (one of constant, cosine)"),
    ],
)
def test_a_broken_constraint_names_the_dotted_key(override, message):
    cfg = REPO / "configs" / "demo" / "ldm.yaml"
    with pytest.raises(ConfigError) as err:
        load_config(cfg, ["data.train_manifest=x", "model.vae_ckpt=v", "model.clap_ckpt=c", override])
    assert str(err.value) == f"{cfg}: {message}"


def test_sibling_constraints_name_both_keys():
    lcm = REPO / "configs" / "demo" / "lcm.yaml"
    with pytest.raises(ConfigError, match=r"model\.guidance_min=6.0 is above model\.guidance_max=5.0"):
        load_config(
            lcm, ["data.train_manifest=x", "model.teacher_ckpt=t", "model.guidance_min=6", "model.guidance_max=5"]
        )
    hifigan = REPO / "configs" / "demo" / "hifigan.yaml"
    with pytest.raises(ConfigError, match=r"model\.istft_phase_iters=4 needs model\.generator=istft \(it is hifigan\)"):
        load_config(hifigan, ["data.train_manifest=x", "model.istft_phase_iters=4"])
