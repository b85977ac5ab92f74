"""The LDM UNet in AudioLDM's diffusers form, and classifier-free guidance."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from omegaconf import OmegaConf

from audioldm.config import load_config
from audioldm.diffusion.guidance import guided_noise
from audioldm.models.unet import UnetConfig, build_unet, predict_noise

REPO = Path(__file__).resolve().parents[1]


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_audioldm_s_and_l_parameter_counts_on_meta():
    """The UNets that configs/ldm_s.yaml and ldm_l.yaml build: 185.0M and 739.1M parameters."""
    required = ["data.train_manifest=x.jsonl", "model.vae_ckpt=v.ckpt", "model.clap_ckpt=c.ckpt"]
    configs = [
        OmegaConf.to_object(load_config(REPO / "configs" / f"ldm_{size}.yaml", required).model.unet)
        for size in ("s", "l")
    ]
    assert configs[0] == UnetConfig()  # the defaults are AudioLDM-S
    with torch.device("meta"):
        small, large = (build_unet(c) for c in configs)
    assert round(count(small) / 1e6, 1) == 185.0 and count(small) == 185_036_552
    assert round(count(large) / 1e6, 1) == 739.1 and count(large) == 739_139_080


def tiny_unet() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_unet(UnetConfig(model_channels=16, channel_mult=[1, 2], layers_per_block=1, head_channels=8))


def test_shapes_and_condition_changes_the_output():
    unet = tiny_unet().eval()
    latent, t = torch.randn(2, 8, 32, 16), torch.tensor([10, 500])
    cond = torch.randn(2, 512)
    out = predict_noise(unet, latent, t, cond)
    assert out.shape == latent.shape
    assert not torch.allclose(out, predict_noise(unet, latent, t, torch.randn(2, 512)))


def test_guidance_one_equals_conditional_and_matches_formula():
    unet = tiny_unet().eval()

    def denoiser(x, t, c):
        return predict_noise(unet, x, t, c)

    latent, t = torch.randn(3, 8, 16, 16), torch.tensor(250)
    cond, null = torch.randn(3, 512), torch.zeros(512)
    with torch.no_grad():
        e_c = denoiser(latent, t.expand(3), cond)
        e_u = denoiser(latent, t.expand(3), null.expand(3, -1))
        torch.testing.assert_close(guided_noise(denoiser, latent, t, cond, null, 1.0), e_c)
        torch.testing.assert_close(
            guided_noise(denoiser, latent, t, cond, null, 2.5), e_u + 2.5 * (e_c - e_u), rtol=1e-4, atol=1e-5
        )


def test_condition_projection_initialisation():
    torch.manual_seed(0)
    default = build_unet(UnetConfig(model_channels=16, channel_mult=[1, 2], layers_per_block=1, head_channels=8))
    level = build_unet(
        UnetConfig(model_channels=16, channel_mult=[1, 2], layers_per_block=1, head_channels=8, condition_init_std=1.0)
    )
    assert float(default.class_embedding.weight.std()) < 0.03  # diffusers' default: U(+-1/sqrt(512))
    assert abs(float(level.class_embedding.weight.std()) - 1.0) < 0.02
    assert float(level.class_embedding.bias.abs().max()) == 0.0
    # a unit-norm embedding now enters at the scale of the timestep embedding
    condition = torch.nn.functional.normalize(torch.randn(64, 512), dim=1)
    assert 0.8 < float(level.class_embedding(condition).std()) < 1.2


def test_scale_shift_film_doubles_the_embedding_projection_and_round_trips_through_diffusers(tmp_path):
    """resnet_time_scale_shift=scale_shift: each res block's embedding projection gives scale and shift
    (2x channels); the condition changes the output; a diffusers folder keeps the choice."""
    from audioldm.formats.diffusers import unet_config_from_diffusers

    config = UnetConfig(
        model_channels=16,
        channel_mult=[1, 2],
        layers_per_block=1,
        head_channels=8,
        resnet_time_scale_shift="scale_shift",
    )
    torch.manual_seed(0)
    unet = build_unet(config).eval()
    block = unet.down_blocks[0].resnets[0]
    assert block.time_emb_proj.out_features == 2 * block.conv1.out_channels
    latent, t = torch.randn(2, 8, 32, 16), torch.tensor([10, 500])
    a, b = torch.randn(2, 512), torch.randn(2, 512)
    with torch.no_grad():
        assert not torch.allclose(predict_noise(unet, latent, t, a), predict_noise(unet, latent, t, b))
    unet.save_pretrained(tmp_path / "unet")
    assert unet_config_from_diffusers(tmp_path / "unet").resnet_time_scale_shift == "scale_shift"
    assert tiny_unet().down_blocks[0].resnets[0].time_emb_proj.out_features == 16  # the default adds it


def test_unknown_scale_shift_mode_is_refused_by_name():
    import pytest

    from audioldm.config.loader import ConfigError

    required = [
        "data.train_manifest=x.jsonl",
        "model.vae_ckpt=v.ckpt",
        "model.clap_ckpt=c.ckpt",
        "model.unet.resnet_time_scale_shift=film",
    ]
    with pytest.raises(ConfigError, match=r"model.unet.resnet_time_scale_shift='film' is unknown"):
        load_config(REPO / "configs" / "ldm_s.yaml", required)


def test_crossattn_t5_unet_parameter_count_on_meta():
    """configs/ldm_s_t5.yaml's UNet with Flan-T5-large's 1024-wide context: 265,531,016 parameters, the count of
    the original audioldm_16k_crossattn_t5 UNet (bench/crossattn_t5_real_size.py builds both)."""
    required = ["data.train_manifest=x.jsonl", "model.vae_ckpt=v.ckpt", "model.text_encoder_path=t5/"]
    config = OmegaConf.to_object(load_config(REPO / "configs" / "ldm_s_t5.yaml", required).model.unet)
    with torch.device("meta"):
        unet = build_unet(replace(config, context_dim=1024))
    assert count(unet) == 265_531_016
