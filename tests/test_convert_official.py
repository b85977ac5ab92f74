"""A whole original AudioLDM ``.ckpt`` end to end: assembled, as the original LatentDiffusion saves it,
from networks built with the original code (UNet ``model.diffusion_model.*`` and its ``model_ema.*``,
VAE ``first_stage_model.*``, HiFi-GAN ``first_stage_model.vocoder.*``, LAION-CLAP
``cond_stage_model.model.*``, ``scale_factor``). Loaded, converted to ours and to the diffusers folder,
each network's output must equal the original's to 1e-5; generate.py and init_from take it directly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import convert
import generate
from audioldm.assembly.latent_diffusion import LdmWeights, load_ldm, read_ldm, to_latent_diffusion
from audioldm.checkpoint import CheckpointError
from audioldm.formats.registry import open_source
from audioldm.models.latent_diffusion import LatentDiffusion
from tests.original_fixtures import SCALE, original_state, save_original_checkpoint

TOL = 1e-5
HEAD_CHANNELS = "8"  # the tiny original UNet's num_head_channels (not stored in the weights)
CAPTIONS = ["a dog barks", "rain on a tin roof", ""]


@pytest.fixture(scope="module")
def original_ckpt(original_audioldm_reference, laion_reference, tmp_path_factory) -> Path:
    state = original_state(original_audioldm_reference, laion_reference.state)
    return save_original_checkpoint(tmp_path_factory.mktemp("official") / "audioldm-tiny-full.ckpt", state)


@pytest.fixture(scope="module")
def weights(original_ckpt, laion_reference) -> LdmWeights:
    return read_ldm(original_ckpt, str(laion_reference.tokenizer_dir), int(HEAD_CHANNELS))


def laion_text(laion_reference, captions: list[str]) -> torch.Tensor:
    """AudioLDM's text condition: RobertaTokenizer to 512 tokens, LAION's get_text_embedding."""
    from transformers import RobertaTokenizer

    tokenizer = RobertaTokenizer.from_pretrained(laion_reference.tokenizer_dir)
    tokens = dict(tokenizer(captions, padding="max_length", truncation=True, max_length=512, return_tensors="pt"))
    with torch.no_grad():
        return laion_reference.laion.get_text_embedding(tokens)


def assert_matches_original(model: LatentDiffusion, ref: dict, laion_reference, raw_unet: bool = True) -> None:
    """Every network of ``model`` against the original code's outputs on the same inputs."""
    u, v, w = ref["unet"], ref["vae"], ref["vocoder"]
    with torch.no_grad():
        if raw_unet:
            eps = model.denoiser(use_ema=False)(u["x"], u["t"], u["y"])
            assert (eps - u["eps"]).abs().max() <= TOL
        decoded = model.vae.decode(v["z"]).sample
        assert (decoded - v["decoded"]).abs().max() <= TOL
        wave = model.vocoder.generator(w["mel"].transpose(1, 2))
        assert (wave - w["wave"].squeeze(1)).abs().max() <= TOL
        text = model.embed_text(CAPTIONS)
    assert (text - laion_text(laion_reference, CAPTIONS)).abs().max() <= TOL
    # batched vs alone: float-rounding apart (allclose's atol 1e-8 failed here by rounding on a busy machine)
    # AudioLDM's unconditional: the embedding of ""
    torch.testing.assert_close(model.null_condition, text[2], rtol=0, atol=TOL)
    assert float(model.scale_factor) == pytest.approx(SCALE)


def test_the_original_checkpoint_is_recognised_and_read(original_ckpt, weights):
    assert open_source(original_ckpt).name == "audioldm (ldm)"
    assert weights.unet_config.model_channels == 32 and weights.unet_config.channel_mult == [1, 2, 3, 5]
    assert weights.unet_config.head_channels == 8 and weights.ema is not None
    ema_conv = weights.ema["conv_in.weight"]
    assert not torch.equal(ema_conv, weights.unet["conv_in.weight"])


def test_every_network_equals_the_original(weights, original_audioldm_reference, laion_reference):
    assert_matches_original(to_latent_diffusion(weights, use_ema=False), original_audioldm_reference, laion_reference)
    with_ema = to_latent_diffusion(weights, use_ema=True)  # the EMA set: the raw one + 0.01
    torch.testing.assert_close(with_ema.unet.conv_in.weight, weights.unet["conv_in.weight"] + 0.01)


@pytest.mark.slow
def test_converted_to_ours_and_to_diffusers_the_outputs_stay(
    original_ckpt, laion_reference, original_audioldm_reference, tmp_path
):
    tokenizer = str(laion_reference.tokenizer_dir)
    ours = tmp_path / "ours.ckpt"
    assert (
        convert.main([str(original_ckpt), str(ours), "--tokenizer", tokenizer, "--head-channels", HEAD_CHANNELS]) == 0
    )
    assert_matches_original(load_ldm(ours, use_ema=False), original_audioldm_reference, laion_reference)
    folder = tmp_path / "diffusers"
    assert (
        convert.main(
            [
                str(original_ckpt),
                str(folder),
                "--to",
                "diffusers",
                "--no-ema",
                "--tokenizer",
                tokenizer,
                "--head-channels",
                HEAD_CHANNELS,
            ]
        )
        == 0
    )
    from_folder = load_ldm(folder)
    assert from_folder.unet.config.attention_head_dim == [4, 8, 12, 20]  # heads per level = channels / 8
    assert_matches_original(from_folder, original_audioldm_reference, laion_reference)


@pytest.mark.slow
def test_generate_takes_the_original_checkpoint(original_ckpt, laion_reference, tmp_path):
    out = tmp_path / "gen"
    assert (
        generate.main(
            [
                "--ckpt",
                str(original_ckpt),
                "--tokenizer",
                str(laion_reference.tokenizer_dir),
                "--head-channels",
                HEAD_CHANNELS,
                "--text",
                "a dog barks",
                "--out",
                str(out),
                "--steps",
                "2",
                "--duration",
                "0.32",
            ]
        )
        == 0
    )
    assert len(list(out.glob("*.wav"))) == 1


def test_init_from_the_original_checkpoint(original_ckpt, laion_reference, tmp_path):
    from audioldm.config import load_config
    from lightning_modules.stages import build_stage
    from tests.ldm_fixtures import REPO

    ldm = load_config(
        REPO / "configs" / "ldm_s.yaml",
        [
            "data.train_manifest=unused.jsonl",
            f"init_from={original_ckpt}",
            f"model.clap_tokenizer={laion_reference.tokenizer_dir}",
            "model.unet.head_channels=8",
        ],
    )
    module, _ = build_stage(ldm)  # ldm_s's own UNet shape is replaced by the checkpoint's
    assert module.config.model.unet.model_channels == 32 and module.model.unet_ema is not None
    assert module.model.unet.config.attention_head_dim == [4, 8, 12, 20]  # model.unet.head_channels=8
    torch.testing.assert_close(module.model.unet_ema.module.conv_in.weight, module.model.unet.conv_in.weight + 0.01)
    vae = load_config(
        REPO / "configs" / "demo" / "vae.yaml",
        [
            "data.train_manifest=unused.jsonl",
            f"init_from={original_ckpt}",
            "model.block_out_channels=[32,64,64]",
            "model.layers_per_block=2",
            "model.norm_num_groups=32",
        ],
    )
    vae_module, _ = build_stage(vae)
    assert float(vae_module.scale_factor) == pytest.approx(SCALE)


def test_without_a_tokenizer_the_error_says_what_to_pass(original_ckpt, tmp_path, capsys):
    assert generate.main(["--ckpt", str(original_ckpt), "--text", "x", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--tokenizer" in err and "RoBERTa" in err and err.count("\n") == 1


def test_truncated_and_incomplete_original_checkpoints_are_named(original_ckpt, laion_reference, tmp_path):
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(original_ckpt.read_bytes()[:100_000])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        read_ldm(truncated)
    checkpoint = torch.load(original_ckpt, weights_only=True)
    del checkpoint["state_dict"]["model.diffusion_model.out.2.weight"]
    del checkpoint["state_dict"]["first_stage_model.decoder.conv_out.bias"]
    incomplete = tmp_path / "incomplete.ckpt"
    torch.save(checkpoint, incomplete)
    with pytest.raises(CheckpointError, match=r"out\.2\.weight"):
        read_ldm(incomplete, str(laion_reference.tokenizer_dir), int(HEAD_CHANNELS))


def test_standalone_hifigan_and_vae_files(original_audioldm_reference, tmp_path):
    """A HiFi-GAN generator file as HiFi-GAN saves it ({"generator": weight-norm state}) and an AudioLDM
    VAE alone convert to our stage checkpoints that reproduce the original outputs."""
    from audioldm.assembly.parts import load_part
    from audioldm.audio.mel import MelConfig

    ref = original_audioldm_reference
    hifigan = tmp_path / "g_02500000"
    torch.save({"generator": ref["vocoder"]["state_wn"]}, hifigan)
    assert convert.main([str(hifigan), str(tmp_path / "vocoder.ckpt")]) == 0
    part = load_part(tmp_path / "vocoder.ckpt", "vocoder", MelConfig())
    vocoder, config = part.network, part.config
    assert config["stage"] == "vocoder"
    with torch.no_grad():
        wave = vocoder.generator(ref["vocoder"]["mel"].transpose(1, 2))
    assert (wave - ref["vocoder"]["wave_wn"].squeeze(1)).abs().max() <= TOL
    vae_file = tmp_path / "vae_only.ckpt"
    torch.save({"state_dict": {f"first_stage_model.{k}": v for k, v in ref["vae"]["state"].items()}}, vae_file)
    assert open_source(vae_file).name == "audioldm (vae)"
    assert convert.main([str(vae_file), str(tmp_path / "vae.ckpt")]) == 0
    part = load_part(tmp_path / "vae.ckpt", "vae", MelConfig())
    vae, scale = part.network, part.scale_factor
    assert float(scale) == 1.0  # not in the file: an LDM on this VAE measures its own
    with torch.no_grad():
        assert (vae.decode(ref["vae"]["z"]).sample - ref["vae"]["decoded"]).abs().max() <= TOL


@pytest.mark.slow
def test_evaluate_generates_with_the_original_checkpoint(original_ckpt, laion_reference, tmp_path):
    import json

    import evaluate
    from tests.conftest import write_manifest_lines, write_tone

    rows = []
    for i in range(2):
        write_tone(tmp_path / "ref" / f"k{i}.wav", 0.64, freq=300 + 100 * i, seed=i)
        rows.append(
            {"id": f"k{i}", "path": str(tmp_path / "ref" / f"k{i}.wav"), "captions": [f"tone {i}"], "split": "test"}
        )
    manifest = write_manifest_lines(tmp_path / "test.jsonl", rows)
    out = tmp_path / "eval"
    assert (
        evaluate.main(
            [
                "--ckpt",
                str(original_ckpt),
                "--tokenizer",
                str(laion_reference.tokenizer_dir),
                "--head-channels",
                HEAD_CHANNELS,
                "--manifest",
                str(manifest),
                "--backbone",
                "clap",
                "--out",
                str(out),
                "--steps",
                "2",
                "--duration",
                "0.64",
            ]
        )
        == 0
    )
    results = json.loads((out / "metrics.json").read_text())
    assert results["pairs"] == 2 and "CLAP_score" in results and "FD_clap" in json.dumps(results)


def test_a_lora_adapter_on_the_original_checkpoint(original_ckpt, laion_reference):
    """configs/ldm_s_lora.yaml on an original .ckpt: the adapter sits on its EMA weights (what generation uses),
    frozen, and records their fingerprint, which loading the .ckpt for generation gives again."""
    from audioldm.assembly.latent_diffusion import load_ldm
    from audioldm.checkpoint import fingerprint
    from audioldm.config import load_config
    from audioldm.models.lora import remove_adapters
    from lightning_modules.stages import build_stage
    from tests.ldm_fixtures import REPO

    config = load_config(
        REPO / "configs" / "ldm_s_lora.yaml",
        [
            "data.train_manifest=unused.jsonl",
            f"init_from={original_ckpt}",
            f"model.clap_tokenizer={laion_reference.tokenizer_dir}",
            "model.unet.head_channels=8",
            "model.lora.rank=2",
        ],
    )
    module, _ = build_stage(config)
    model = module.model
    assert model.unet_ema is None and all(".lora_" in n for n, p in model.unet.named_parameters() if p.requires_grad)
    generation = load_ldm(original_ckpt, tokenizer=str(laion_reference.tokenizer_dir), head_channels=8)
    assert model.adapter_meta["base"]["fingerprint"] == fingerprint(generation.unet)
    remove_adapters(model.unet)  # the frozen base alone: the EMA set
    torch.testing.assert_close(model.unet.conv_in.weight, generation.unet.conv_in.weight, rtol=0, atol=0)
