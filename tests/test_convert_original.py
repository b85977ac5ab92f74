"""Original AudioLDM weights -> our networks, checked against the original code (audioldm 0.1.1).

``tests/reference/original_audioldm_probe.py`` builds the original UNet, VAE and HiFi-GAN at tiny
sizes in a subprocess (the original package is also named ``audioldm``) and saves their state
dicts, inputs and outputs; here they are converted, loaded strictly and run (float32, CPU).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers.models.attention_processor import Attention

from audioldm.checkpoint import CheckpointError, load_weights
from audioldm.formats.keymaps.original_hifigan import fold_weight_norm, fold_weight_norms, vocoder_from_original
from audioldm.formats.keymaps.original_unet import default_head_channels, unet_from_original, unflatten_ema_keys
from audioldm.formats.keymaps.original_vae import vae_from_original
from audioldm.models.unet import build_unet, predict_noise
from audioldm.models.vae import build_autoencoder
from audioldm.models.vocoder import build_generator

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / ".refs" / "audioldm-0.1.1"
PROBE = ROOT / "tests" / "reference" / "original_audioldm_probe.py"
TOL = 1e-5


@pytest.fixture(scope="module")
def ref(original_audioldm_reference) -> dict:
    return original_audioldm_reference


def _one_line_error(fn, *args, **kwargs) -> str:
    with pytest.raises(CheckpointError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def _run_unet(state: dict, head_channels: int | None, ref_unet: dict):
    config, converted = unet_from_original(state, head_channels)
    unet = build_unet(config)
    load_weights(unet, converted, "converted UNet")
    with torch.no_grad():
        eps = predict_noise(unet.eval(), ref_unet["x"], ref_unet["t"], ref_unet["y"])
    return config, unet, eps


@pytest.mark.parametrize("name, head_channels", [("unet", 8), ("unet_h16", 16)])
def test_unet_matches_original(ref, name, head_channels):
    r = ref[name]
    assert r["eps"].std() > 0.1  # noise on every parameter: no zero output layers
    config, unet, eps = _run_unet(r["state"], head_channels, r)
    assert (config.model_channels, config.channel_mult, config.layers_per_block) == (32, [1, 2, 3, 5], 2)
    assert (config.latent_channels, config.condition_dim, config.head_channels) == (8, 512, head_channels)
    assert sorted({m.heads for m in unet.modules() if isinstance(m, Attention)}) == r["heads"]
    assert (eps - r["eps"]).abs().max() <= TOL


def test_unet_head_channels_are_honoured(ref):
    r = ref["unet_h16"]
    _, _, eps = _run_unet(r["state"], 8, r)  # twice the heads of the original
    assert (eps - r["eps"]).abs().max() > 1e-2
    config, _ = unet_from_original(r["state"])
    assert config.head_channels == 32 == default_head_channels(32)
    assert [default_head_channels(c) for c in (128, 192, 256)] == [32, 32, 64]  # AudioLDM S, M, L


def test_ema_keys_unflatten(ref):
    state, ema = ref["unet"]["state"], ref["ema"]["state"]
    assert "diffusion_modelinput_blocks00weight" in ema and "num_updates" in ema and "decay" in ema
    for flat in (ema, {f"model_ema.{k}": v for k, v in ema.items()}):
        restored = unflatten_ema_keys(flat, state.keys())
        assert list(restored) == list(state)
        assert all(torch.equal(restored[k], state[k]) for k in state)
    unet_from_original(restored, 8)
    partial = {k: v for k, v in ema.items() if k != "diffusion_modelout2weight"}
    assert "out.2.weight" in _one_line_error(unflatten_ema_keys, partial, state.keys())
    assert "diffusion_modelfoo" in _one_line_error(
        unflatten_ema_keys, {**ema, "diffusion_modelfoo": torch.ones(1)}, state.keys()
    )


def test_unet_errors(ref):
    state = ref["unet"]["state"]
    message = _one_line_error(
        unet_from_original, {k: v for k, v in state.items() if k != "input_blocks.4.1.proj_in.weight"}, 8
    )
    assert "missing 1 ['input_blocks.4.1.proj_in.weight']" in message
    extra = dict(state, **{"input_blocks.1.1.norm.weight": torch.ones(32)})  # attention at the first level
    assert "unexpected 1 ['input_blocks.1.1.norm.weight']" in _one_line_error(unet_from_original, extra, 8)
    deeper = dict(state, **{"input_blocks.4.1.transformer_blocks.1.norm1.weight": torch.ones(64)})
    assert "depth" in _one_line_error(unet_from_original, deeper, 8)
    added = dict(state, **{k: v[:, :128] for k, v in state.items() if k.endswith("emb_layers.1.weight")})
    assert "extra_film_use_concat" in _one_line_error(unet_from_original, added, 8)
    no_film = {k: v for k, v in state.items() if not k.startswith("film_emb.")}
    assert "film_emb.weight" in _one_line_error(unet_from_original, no_film, 8)
    prefixed = {f"model.diffusion_model.{k}": v for k, v in state.items()}
    assert "strip" in _one_line_error(unet_from_original, prefixed, 8)
    assert "missing" in _one_line_error(unet_from_original, ref["vae"]["state"], 8)
    assert "divisible" in _one_line_error(unet_from_original, state, 64)  # 96 channels: not 64 per head


def test_vae_matches_original(ref):
    r = ref["vae"]
    config, converted = vae_from_original(r["state"])
    assert (config.block_out_channels, config.layers_per_block, config.latent_channels) == ([32, 64, 64], 2, 8)
    vae = build_autoencoder(config)
    load_weights(vae, converted, "converted VAE")
    with torch.no_grad():
        decoded = vae.eval().decode(r["z"]).sample
        mean = vae.encode(r["mel"]).latent_dist.mean
    assert r["decoded"].std() > 0.1 and r["mean"].std() > 0.1
    assert (decoded - r["decoded"]).abs().max() <= TOL
    assert (mean - r["mean"]).abs().max() <= TOL


def test_vae_errors(ref):
    state = ref["vae"]["state"]
    gone = "decoder.up.0.block.0.nin_shortcut.weight"  # up.0 (full resolution) is diffusers' up_blocks.2
    assert f"missing 1 ['{gone}']" in _one_line_error(vae_from_original, {k: v for k, v in state.items() if k != gone})
    with_vocoder = dict(state, **{"vocoder.conv_pre.weight": torch.ones(1)})
    assert "original_hifigan" in _one_line_error(vae_from_original, with_vocoder)
    attention = dict(state, **{"encoder.down.1.attn.0.q.weight": torch.ones(64, 64, 1, 1)})
    assert "unexpected 1 ['encoder.down.1.attn.0.q.weight']" in _one_line_error(vae_from_original, attention)
    wrong = dict(state, **{"quant_conv.weight": torch.ones(16, 16, 3, 3)})
    assert "quant_conv.weight" in _one_line_error(vae_from_original, wrong)
    assert "missing" in _one_line_error(vae_from_original, ref["unet"]["state"])


@pytest.mark.parametrize(
    "name, variant",
    [
        ("vocoder", "state"),
        ("vocoder", "state_wn"),
        ("vocoder", "generator"),
        ("vocoder_small", "state"),
        ("vocoder_small", "state_wn"),
    ],
)
def test_vocoder_matches_original(ref, name, variant):
    r = ref[name]
    h = r["kwargs"]
    state = {"generator": r["state_wn"]} if variant == "generator" else r[variant]
    if name == "vocoder":  # AudioLDM's kernels: rates and dilations are the defaults
        config, converted = vocoder_from_original(state)
    else:
        config, converted = vocoder_from_original(state, h["upsample_rates"], h["resblock_dilation_sizes"])
    assert config.upsample_rates == h["upsample_rates"]
    assert config.upsample_kernel_sizes == h["upsample_kernel_sizes"]
    assert config.resblock_kernel_sizes == h["resblock_kernel_sizes"]
    assert config.upsample_initial_channel == h["upsample_initial_channel"]
    assert torch.equal(converted["mean"], torch.zeros(64)) and torch.equal(converted["scale"], torch.ones(64))
    generator = build_generator(config, n_mels=h["num_mels"])
    load_weights(generator, converted, "converted vocoder")
    with torch.no_grad():
        wave = generator.eval()(r["mel"].transpose(1, 2))  # [B, T, 64] -> [B, T * hop + overshoot]
    expected = r["wave_wn"] if variant != "state" else r["wave"]
    assert r["wave"].std() > 1e-3 and wave.shape == expected.squeeze(1).shape
    assert (wave - expected.squeeze(1)).abs().max() <= TOL


def test_vocoder_errors(ref):
    small = ref["vocoder_small"]["state"]
    assert "upsample_rates" in _one_line_error(vocoder_from_original, small)
    assert "upsample_rates" in _one_line_error(vocoder_from_original, small, [4, 3, 2])
    assert "resblock_dilation_sizes" in _one_line_error(vocoder_from_original, small, [4, 3], [[1, 3]] * 2)
    state = ref["vocoder"]["state"]
    gone = "resblocks.7.convs2.1.weight"
    assert f"missing 1 ['{gone}']" in _one_line_error(
        vocoder_from_original, {k: v for k, v in state.items() if k != gone}
    )
    assert "unexpected 1 ['ups.5.bias']" in _one_line_error(
        vocoder_from_original, dict(state, **{"ups.5.bias": torch.ones(1)})
    )
    half = {k: v for k, v in ref["vocoder"]["state_wn"].items() if k != "conv_pre.weight_v"}
    assert "conv_pre.weight_g" in _one_line_error(vocoder_from_original, half)
    assert "strip" in _one_line_error(
        vocoder_from_original, {f"first_stage_model.vocoder.{k}": v for k, v in state.items()}
    )
    assert "missing" in _one_line_error(vocoder_from_original, ref["vae"]["state"])


@pytest.mark.filterwarnings("ignore:.*weight_norm.*is deprecated:FutureWarning")
@pytest.mark.parametrize("transposed", [False, True])
def test_fold_weight_norm_matches_torch(transposed):
    """torch's weight_norm (dim=0) normalises over every dim but 0, for ConvTranspose1d too (dim 0 = input)."""
    torch.manual_seed(0)
    conv = torch.nn.ConvTranspose1d(6, 4, 8, 4) if transposed else torch.nn.Conv1d(6, 4, 5)
    module = torch.nn.utils.weight_norm(conv)  # what the original HiFi-GAN uses
    with torch.no_grad():
        module.weight_g.mul_(torch.rand_like(module.weight_g) + 0.5)
        module(torch.randn(1, 6, 9))  # the pre-forward hook recomputes .weight
    assert module.weight_g.shape == (conv.weight.shape[0], 1, 1)
    folded = fold_weight_norm(module.weight_g, module.weight_v)
    assert torch.allclose(folded, module.weight, atol=1e-7)
    # the newer parametrisation stores the same pair as original0 / original1
    state = {
        "conv.parametrizations.weight.original0": module.weight_g.detach(),
        "conv.parametrizations.weight.original1": module.weight_v.detach(),
        "conv.bias": module.bias.detach(),
    }
    folded_state = fold_weight_norms(state)
    assert sorted(folded_state) == ["conv.bias", "conv.weight"]
    assert torch.allclose(folded_state["conv.weight"], module.weight, atol=1e-7)
