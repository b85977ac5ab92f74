"""Checkpoint formats as plug-ins (audioldm/formats/): every format module has the one small interface, the
registry alone tells them apart, a new format is one module plus one line in ``FORMATS``, and our own ldm
checkpoints load directly, without any format reader."""

from __future__ import annotations

import types

import pytest
import torch

from audioldm.assembly.parts import load_part
from audioldm.audio.mel import MelConfig
from audioldm.checkpoint import CheckpointError
from audioldm.formats import diffusers, ours, registry
from audioldm.formats.source import AUDIOLDM_NETWORKS, NetworkWeights, holds_no, prefixed, stage_config


def test_every_format_has_the_same_interface():
    names = [fmt.NAME for fmt in registry.FORMATS]
    assert len(set(names)) == len(names) == 7
    for fmt in registry.FORMATS:
        assert isinstance(fmt.DESCRIPTION, str) and fmt.DESCRIPTION, fmt.NAME
        for function in ("detect", "parts", "read"):
            assert callable(getattr(fmt, function)), (fmt.NAME, function)
    assert [fmt for fmt in registry.FORMATS if hasattr(fmt, "write") or hasattr(fmt, "write_ldm")] == [ours, diffusers]


def test_our_checkpoints_load_directly_without_any_format_reader(tiny_ldm_checkpoint, monkeypatch):
    """generate.py's load of one of ours builds the model from the checkpoint's configs and fills it with its state
    dict in one pass: no format module reads a network of it."""
    from audioldm.assembly.latent_diffusion import load_ldm

    def converter(*args, **kwargs):
        raise AssertionError("a format reader was used to load our own checkpoint")

    for fmt in registry.FORMATS:
        monkeypatch.setattr(fmt, "read", converter)
    monkeypatch.setattr(registry, "read_network", converter)
    model = load_ldm(tiny_ldm_checkpoint)
    raw = torch.load(tiny_ldm_checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    assert torch.equal(model.unet.conv_in.weight, raw["model.unet_ema.module.conv_in.weight"])  # the EMA set
    assert torch.equal(model.null_condition, raw["model.null_condition"])


def fake_format() -> types.ModuleType:
    """A new format, as a contributor would add one: a ``.pt`` holding ``{"my_vocoder": {"config": ..., "weights":
    ...}}`` (a vocoder config dict in our VocoderConfig's terms and its generator's state dict)."""
    module = types.ModuleType("my_format")
    module.NAME, module.DESCRIPTION = "my_format", "a my_format vocoder file"

    def detect(source):
        return "vocoder" if source.raw is not None and "my_vocoder" in source.raw else None

    def read(source, part, options):
        if part != "vocoder":
            raise holds_no(source, part)
        from audioldm.models.vocoder import VocoderConfig

        held = source.raw["my_vocoder"]
        config = stage_config("vocoder", VocoderConfig(**held["config"]), options.foreign_mel, source.path)
        return NetworkWeights(config, prefixed(held["weights"], "generator."))

    module.detect, module.parts, module.read = detect, lambda source: ("vocoder",), read
    return module


def test_a_new_format_is_one_module_and_one_registry_line(tmp_path, monkeypatch):
    from audioldm.models.vocoder import VocoderConfig, build_generator

    config = {"upsample_initial_channel": 32}
    torch.manual_seed(0)
    generator = build_generator(VocoderConfig(**config))
    path = tmp_path / "voc.pt"
    torch.save({"my_vocoder": {"config": config, "weights": generator.state_dict()}}, path)
    with pytest.raises(CheckpointError, match="no tensor state dict in it"):  # no format knows it yet
        load_part(path, "vocoder", MelConfig())
    monkeypatch.setattr(registry, "FORMATS", (*registry.FORMATS, fake_format()))  # the one line
    assert registry.open_source(path).name == "my_format (vocoder)"
    vocoder = load_part(path, "vocoder", MelConfig()).network
    mel = torch.randn(1, 1, 8, 64)
    torch.testing.assert_close(vocoder(mel), generator(mel.squeeze(1))[..., : 8 * 160])
    with pytest.raises(CheckpointError, match="holds no vae"):
        load_part(path, "vae", MelConfig())


def test_what_each_format_holds(tiny_ldm_checkpoint, tmp_path):
    source = registry.open_source(tiny_ldm_checkpoint)
    assert source.format.parts(source) == AUDIOLDM_NETWORKS and registry.holds_whole_model(source)
    vae = registry.open_source(tiny_ldm_checkpoint.parent / "vae.ckpt")
    assert vae.name == "ours (vae)" and vae.format.parts(vae) == ("vae",) and not registry.holds_whole_model(vae)
    with pytest.raises(CheckpointError, match="is a 'vae' checkpoint without a clap in it"):
        load_part(vae, "clap", MelConfig())
