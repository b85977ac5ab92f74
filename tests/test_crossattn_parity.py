"""An original crossattn-T5 .ckpt (audioldm_16k_crossattn_t5, AudioLDM 2 code) -> our networks, checked against
the original code (PyPI audioldm2 0.1.0).

``tests/reference/original_audioldm2_probe.py`` builds the original crossattn UNet and FlanT5HiddenState at tiny
sizes in a subprocess and saves them in the official checkpoint layout with inputs and outputs; here that file is
opened by the format registry, each network is read, loaded strictly and run (float32, CPU).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from diffusers.models.attention_processor import Attention
from transformers import T5Config, T5EncoderModel

from audioldm.formats import original, original_crossattn_t5, registry
from audioldm.formats.keymaps.original_crossattn_unet import crossattn_unet_from_original
from audioldm.formats.keymaps.original_unet import unet_from_original
from audioldm.formats.original_crossattn_t5 import t5_config_from_state
from audioldm.formats.source import ReadOptions
from audioldm.models.text_encoder import T5TextEncoder
from audioldm.models.token_condition import pack
from audioldm.models.unet import UnetConfig, build_unet, network_output
from tests.original_fixtures import save_original_checkpoint
from tests.test_convert_original import _one_line_error

TOL = 1e-5  # float32 rounding, relative to the output's scale
MAX_LENGTH = 128


@pytest.fixture(scope="module")
def ref(tmp_path_factory) -> dict:
    """The probe's tiny original networks (tests/audioldm2_fixtures.py); the tiny T5 folder is ref["folder"]/t5."""
    from tests.audioldm2_fixtures import run_audioldm2_probe

    folder = tmp_path_factory.mktemp("original_audioldm2")
    try:
        result = run_audioldm2_probe(folder)
    except FileNotFoundError as e:
        pytest.fail(str(e))
    result["folder"] = folder
    return result


@pytest.fixture(scope="module")
def checkpoint(ref) -> Path:
    """The probe's networks saved as the original training code saves a checkpoint."""
    return save_original_checkpoint(ref["folder"] / "audioldm-crossattn-t5-tiny.ckpt", ref["checkpoint_state"])


def _scaled_diff(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return float((ours - reference).abs().max() / max(1.0, float(reference.abs().max())))


def test_the_registry_tells_a_crossattn_checkpoint(checkpoint):
    source = registry.open_source(checkpoint)
    assert source.name == "original-crossattn-t5 (ldm)"
    assert source.format.parts(source) == ("unet", "vae", "vocoder", "text_encoder")
    assert registry.holds_whole_model(source)
    assert original.detect(source) is None  # the AudioLDM 1 format leaves it alone
    assert "holds no clap" in _one_line_error(registry.read_network, source, "clap", ReadOptions())


def test_unet_matches_original(ref, checkpoint):
    r, t5 = ref["unet"], ref["t5"]
    assert r["out"].std() > 0.1 and (r["out"] - r["out_null"]).abs().max() > 1e-2  # the text matters
    weights = registry.read_network(checkpoint, "unet", ReadOptions(head_channels=8))
    config = weights.config
    assert (config.model_channels, config.channel_mult, config.layers_per_block) == (32, [1, 2, 3, 5], 2)
    assert (config.latent_channels, config.head_channels, config.context_dim) == (8, 8, 32)
    assert weights.ema is None  # the probe saves no model_ema.*
    unet = build_unet(config)
    unet.load_state_dict(weights.state, strict=True)
    unet.eval()
    assert sorted({m.heads for m in unet.modules() if isinstance(m, Attention)}) == r["heads"]
    with torch.no_grad():
        out = network_output(unet, r["x"], r["t"], pack(t5["states"][:2], t5["mask"][:2], MAX_LENGTH))
        unpadded = network_output(unet, r["x"], r["t"], pack(t5["states"][:2], t5["mask"][:2]))
        out_null = network_output(unet, r["x"], r["t"], pack(t5["null_states"], t5["null_mask"], MAX_LENGTH))
    diff, diff_null = _scaled_diff(out, r["out"]), _scaled_diff(out_null, r["out_null"])
    print(f"crossattn UNet vs original: max abs diff {diff:.2e} (text), {diff_null:.2e} (null)")
    assert diff <= TOL and diff_null <= TOL
    assert _scaled_diff(out, unpadded) <= TOL  # padding to max_length changes nothing


def test_unet_head_channels_default_and_ema(ref, checkpoint):
    state = dict(ref["checkpoint_state"])
    unet_state = {k.removeprefix("model.diffusion_model."): v for k, v in state.items() if "diffusion_model." in k}
    # LitEma's names: the UNet's keys without dots (DiffusionWrapper's "diffusion_model" first); the EMA differs
    state.update({"model_ema." + ("diffusion_model" + k).replace(".", ""): v + 0.01 for k, v in unet_state.items()})
    state.update({"model_ema.num_updates": torch.tensor(10), "model_ema.decay": torch.tensor(0.9999)})
    path = checkpoint.parent / "with-ema.ckpt"
    torch.save({"state_dict": state}, path)
    weights = registry.read_network(path, "unet", ReadOptions())
    assert weights.config.head_channels == 32  # the official value (not in the weights)
    assert weights.ema is not None and list(weights.ema) == list(weights.state)
    assert all(torch.equal(weights.ema[k], v + 0.01) for k, v in weights.state.items())


def test_text_encoder_matches_original(ref, checkpoint):
    t5 = ref["t5"]
    tokenizer = ref["folder"] / "t5"
    weights = registry.read_network(checkpoint, "text_encoder", ReadOptions(tokenizer=str(tokenizer)))
    hf = weights.config["hf_config"]
    assert (weights.config["encoder"], weights.config["max_length"]) == ("t5", MAX_LENGTH)
    assert weights.config["tokenizer"] == str(tokenizer.resolve())
    assert (hf["d_model"], hf["d_kv"], hf["num_heads"], hf["d_ff"], hf["num_layers"], hf["vocab_size"]) == (
        32,
        16,
        2,
        64,
        2,
        240,
    )
    assert (hf["feed_forward_proj"], hf["dense_act_fn"], hf["is_gated_act"]) == ("gated-gelu", "gelu_new", True)
    encoder = T5TextEncoder(weights.config)
    encoder.load_state_dict(weights.state, strict=True)
    encoder.eval()
    with torch.no_grad():
        states, mask = encoder.token_states(t5["captions"])
        null_states, null_mask = encoder.token_states([""] * 2)
    length = t5["mask"].shape[1]
    assert states.shape == (4, MAX_LENGTH, 32) and mask.shape == (4, MAX_LENGTH)
    assert torch.equal(mask[:, :length].float(), t5["mask"]) and not mask[:, length:].any()
    diff = float(((states[:, :length] - t5["states"]) * t5["mask"][..., None]).abs().max())
    assert torch.equal(null_mask[:, :1].float(), t5["null_mask"]) and not null_mask[:, 1:].any()
    diff_null = float((null_states[:, :1] - t5["null_states"]).abs().max())
    print(f"T5 vs FlanT5HiddenState: max abs diff {diff:.2e} (captions), {diff_null:.2e} (null)")
    assert diff <= TOL and diff_null <= TOL
    message = _one_line_error(registry.read_network, checkpoint, "text_encoder", ReadOptions())
    assert "--tokenizer" in message


@pytest.mark.parametrize("gated", [True, False])
def test_t5_config_is_read_off_the_shapes(gated):
    config = T5Config(
        vocab_size=56,
        d_model=24,
        d_kv=4,
        num_heads=3,
        d_ff=40,
        num_layers=3,
        relative_attention_num_buckets=8,
        feed_forward_proj="gated-gelu" if gated else "relu",
    )
    with torch.device("meta"):
        state = T5EncoderModel(config).state_dict()
    read = t5_config_from_state(state)
    for field in ("vocab_size", "d_model", "d_kv", "num_heads", "d_ff", "num_layers", "relative_attention_num_buckets"):
        assert read[field] == getattr(config, field), field
    assert (read["dense_act_fn"], read["is_gated_act"]) == (config.dense_act_fn, config.is_gated_act)
    state.pop("shared.weight")
    assert "missing ['shared.weight']" in _one_line_error(t5_config_from_state, state)


def test_vae_and_vocoder_are_read_as_in_audioldm1(checkpoint, monkeypatch):
    """The official crossattn-T5 .ckpt keeps its VAE and HiFi-GAN as AudioLDM 1 does (first_stage_model.*): the
    AudioLDM 1 readers (tests/test_convert_original.py checks them against the original code) read them."""
    source = registry.open_source(checkpoint)
    calls = []
    for name in ("_vae", "_vocoder"):
        monkeypatch.setattr(original, name, lambda src, options, name=name: calls.append((name, src)) or name)
    assert registry.read_network(source, "vae", ReadOptions()) == "_vae"
    assert registry.read_network(source, "vocoder", ReadOptions()) == "_vocoder"
    assert calls == [("_vae", source), ("_vocoder", source)]


def film_original_state() -> dict[str, torch.Tensor]:
    """A tiny AudioLDM 1 .ckpt's keys: a FiLM UNet in the original layout (our UNet renamed back by the FiLM
    keymap, which tests/test_convert_original.py checks against the original code), a VAE, HiFi-GAN and CLAP."""
    from audioldm.formats.keymaps.mapping import rename_prefix
    from audioldm.formats.keymaps.original_unet import _prefix_table

    config = UnetConfig(model_channels=32, head_channels=8)
    inverse = {ours: orig for orig, ours in _prefix_table(len(config.channel_mult), config.layers_per_block).items()}
    with torch.device("meta"):
        unet = build_unet(config).state_dict()
    state = {f"model.diffusion_model.{rename_prefix(k, inverse)}": torch.zeros(v.shape) for k, v in unet.items()}
    one = torch.zeros(1)
    for key in ("first_stage_model.encoder.conv_in.weight", "first_stage_model.decoder.conv_out.weight"):
        state[key] = one
    state["first_stage_model.vocoder.conv_pre.weight_g"] = one
    state["cond_stage_model.model.text_branch.embeddings.word_embeddings.weight"] = one
    state["scale_factor"] = torch.tensor(0.7)
    return state


def test_film_checkpoints_stay_audioldm1(ref, tmp_path):
    path = tmp_path / "film.ckpt"
    state = film_original_state()
    torch.save({"state_dict": state}, path)
    source = registry.open_source(path)
    assert source.name == "audioldm (ldm)"
    assert original_crossattn_t5.detect(source) is None
    film_unet = {k.removeprefix("model.diffusion_model."): v for k, v in state.items() if "diffusion_model." in k}
    assert unet_from_original(film_unet, 8)[0].context_dim is None  # the FiLM keymap takes it whole
    message = _one_line_error(crossattn_unet_from_original, film_unet, 8)
    assert "FiLM" in message and "film_emb" in message
    crossattn = ref["unet"]["state"]
    assert "missing ['film_emb.weight']" in _one_line_error(unet_from_original, crossattn, 8)


def test_crossattn_unet_errors(ref):
    state = ref["unet"]["state"]
    prefixed = {f"model.diffusion_model.{k}": v for k, v in state.items()}
    assert "strip the 'model.diffusion_model.' prefix" in _one_line_error(crossattn_unet_from_original, prefixed)
    two_conditions = dict(state)  # AudioLDM 2 proper: a second cross-attending transformer per res block
    for k, v in state.items():
        if k.startswith("input_blocks.4.2."):
            two_conditions[k.replace("input_blocks.4.2.", "input_blocks.4.3.")] = v
    assert "more than one cross-attention condition" in _one_line_error(crossattn_unet_from_original, two_conditions)
    no_cross = {k: v for k, v in state.items() if not re.search(r"(blocks\.\d+|middle_block)\.2\.(?!conv)", k)}
    assert "no cross-attending transformers" in _one_line_error(crossattn_unet_from_original, no_cross)
    missing = {k: v for k, v in state.items() if not k.startswith("middle_block.2.")}
    message = _one_line_error(crossattn_unet_from_original, missing, 8)
    assert "missing" in message and "middle_block.2." in message
    assert "not divisible by head_channels=12" in _one_line_error(crossattn_unet_from_original, state, 12)


@pytest.fixture(scope="module")
def whole_checkpoint(ref, original_audioldm_reference) -> Path:
    """A whole tiny audioldm_16k_crossattn_t5 .ckpt: the probe's UNet and T5 with the original AudioLDM VAE and
    HiFi-GAN (the release keeps them as AudioLDM 1 does), no CLAP."""
    from tests.original_fixtures import SCALE

    state = dict(ref["checkpoint_state"])
    state.update({f"first_stage_model.{k}": v for k, v in original_audioldm_reference["vae"]["state"].items()})
    voc = original_audioldm_reference["vocoder"]["state"]
    state.update({f"first_stage_model.vocoder.{k}": v for k, v in voc.items()})
    state["scale_factor"] = torch.tensor(SCALE)
    path = ref["folder"] / "audioldm_16k_crossattn_t5-tiny.ckpt"
    save_original_checkpoint(path, state)
    return path


@pytest.mark.slow
def test_official_crossattn_t5_generates_converts_and_fine_tunes(ref, whole_checkpoint, tmp_path, capsys):
    import convert
    import generate
    import train
    from audioldm.assembly.latent_diffusion import load_ldm
    from tests.conftest import write_manifest_lines, write_tone

    tokenizer = str(ref["folder"] / "t5")
    model = load_ldm(whole_checkpoint, tokenizer=tokenizer, head_channels=8)
    assert model.condition == "crossattn_t5" and model.clap is None
    states, mask = ref["t5"]["states"][:2], ref["t5"]["mask"][:2]
    with torch.no_grad():  # the EMA-less original: its raw UNet, as the original code ran it
        ours = network_output(model.unet, ref["unet"]["x"], ref["unet"]["t"], pack(states, mask, MAX_LENGTH))
        tokens = model.text_condition(ref["t5"]["captions"][:2])
    assert _scaled_diff(ours, ref["unet"]["out"]) < TOL
    real = mask.bool()
    assert _scaled_diff(tokens[..., :-1][:, : mask.shape[1]][real], states[real]) < TOL

    common = ["--ckpt", str(whole_checkpoint), "--tokenizer", tokenizer, "--head-channels", "8", "--steps", "2"]
    common += ["--duration", "0.64", "--text", "a dog barks"]
    assert generate.main([*common, "--guidance", "3.5", "--out", str(tmp_path / "gen")]) == 0
    assert (tmp_path / "gen" / "000_a_dog_barks.wav").is_file()
    capsys.readouterr()
    assert generate.main([*common, "--candidates", "2", "--out", str(tmp_path / "gen2")]) == 2
    assert "needs a CLAP to rank them" in capsys.readouterr().err

    converted = tmp_path / "ours.ckpt"
    assert convert.main([str(whole_checkpoint), str(converted), "--tokenizer", tokenizer, "--head-channels", "8"]) == 0
    assert (tmp_path / "ours.t5_tokenizer").is_dir()
    again = load_ldm(converted)
    assert again.condition == "crossattn_t5"
    torch.testing.assert_close(again.null_condition, model.null_condition)
    assert convert.main([str(converted), str(tmp_path / "diffusers"), "--to", "diffusers"]) == 2
    assert "diffusers has no pipeline for a crossattn_t5 AudioLDM" in capsys.readouterr().err

    # fine-tuning from it: its UNet, T5, VAE and vocoder; no CLAP needed
    rows = []
    for i in range(4):
        write_tone(tmp_path / "audio" / f"c{i}.wav", 0.6, 16000, freq=300 + 50 * i, seed=i)
        rows.append({"id": f"c{i}", "path": f"audio/c{i}.wav", "captions": ["a dog barks"], "split": "train"})
    manifest = write_manifest_lines(tmp_path / "manifest.jsonl", rows)
    args = [
        "--config",
        "configs/demo/ldm.yaml",
        f"init_from={whole_checkpoint}",
        "model.vae_ckpt=null",
        "model.clap_ckpt=null",
        "model.vocoder_ckpt=null",
        "model.condition=crossattn_t5",
        f"model.text_tokenizer={tokenizer}",
        "model.unet.head_channels=8",
        "model.text_condition_prob=0",
        "model.unet.condition_init_std=null",
        f"data.train_manifest={manifest}",
        "data.latent_cache_dir=null",
        "data.segment_seconds=0.64",
        "data.batch_size=2",
        "data.num_workers=0",
        f"output_dir={tmp_path / 'runs'}",
        "trainer.max_steps=2",
        "trainer.enable_progress_bar=false",
        "model.val_steps=2",
        "model.val_seconds=0.64",
        "model.val_prompts=[a dog barks]",
    ]
    assert train.main(args) == 0
    tuned = next((tmp_path / "runs").glob("*/version_0/checkpoints/last.ckpt"))
    assert load_ldm(tuned).condition == "crossattn_t5"
