"""v-prediction UNets (``model.unet.prediction_type: v_prediction``): v and the epsilon it implies against
diffusers' scheduler, the training target and its Min-SNR weight, validation's epsilon MSE, a distilled
student keeping its teacher's parameterisation, the diffusers export (scheduler told v_prediction) and back."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from audioldm.assembly.latent_diffusion import load_ldm, read_ldm
from audioldm.assembly.student import student_unet
from audioldm.config import load_config
from audioldm.diffusion.schedule import epsilon_from_v, make_scheduler, v_target
from audioldm.formats import diffusers
from audioldm.models.unet import UnetConfig, build_unet, network_output, predict_noise, prediction_type
from lightning_modules.ldm import LdmModule
from lightning_modules.loading import load_stage
from tests.ldm_fixtures import REPO, ldm_overrides

DEMO = str(REPO / "configs" / "demo" / "ldm.yaml")
TINY_V = UnetConfig(
    model_channels=16, channel_mult=[1, 2], layers_per_block=1, head_channels=8, prediction_type="v_prediction"
)


def test_v_and_its_epsilon_match_diffusers():
    ddpm = make_scheduler("ddpm")
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(4, 8, 6, 4, generator=g), torch.randn(4, 8, 6, 4, generator=g)
    t = torch.tensor([0, 250, 700, 999])
    v = v_target(x0, noise, t)
    torch.testing.assert_close(v, ddpm.get_velocity(x0, noise, t))
    x_t = ddpm.add_noise(x0, noise, t)
    torch.testing.assert_close(epsilon_from_v(v, x_t, t), noise, atol=1e-5, rtol=0)
    # the x_0 a v prediction implies, as diffusers' DDIM computes it, is bounded at t = 999 for a wrong v
    ddim = make_scheduler("ddim")
    ddim.config.prediction_type = "v_prediction"
    wrong = v + 0.1 * torch.randn(v.shape, generator=g)
    a = ddpm.alphas_cumprod[t].reshape(-1, 1, 1, 1)
    x0_v = a.sqrt() * x_t - (1 - a).sqrt() * wrong
    assert (x0_v - x0)[3].abs().max() < 0.5  # an epsilon error of 0.1 would give 0.1 * sqrt((1-a)/a) ~ 8


def test_predict_noise_turns_v_into_epsilon():
    torch.manual_seed(0)
    unet = build_unet(TINY_V)
    assert (
        prediction_type(unet) == "v_prediction"
        and prediction_type(build_unet(UnetConfig(**{**dataclasses.asdict(TINY_V), "prediction_type": "epsilon"})))
        == "epsilon"
    )
    x, t, c = torch.randn(2, 8, 8, 4), torch.tensor([3, 900]), torch.randn(2, 512)
    a = make_scheduler("ddpm").alphas_cumprod[t].reshape(-1, 1, 1, 1)
    with torch.no_grad():
        out = network_output(unet, x, t, c)
        torch.testing.assert_close(predict_noise(unet, x, t, c), a.sqrt() * out + (1 - a).sqrt() * x)
    with pytest.raises(ValueError, match="prediction_type='x0' must be one of epsilon, v_prediction"):
        build_unet(dataclasses.replace(TINY_V, prediction_type="x0"))


def test_bad_prediction_type_fails_at_config_load():
    from audioldm.config.loader import ConfigError

    with pytest.raises(ConfigError, match="model.unet.prediction_type='sample' is unknown"):
        load_config(DEMO, ["model.unet.prediction_type=sample"])


def test_student_keeps_the_teachers_parameterisation():
    torch.manual_seed(0)
    teacher = build_unet(TINY_V)
    student, config = student_unet(teacher, TINY_V, 32)
    assert config.prediction_type == "v_prediction" and prediction_type(student) == "v_prediction"
    x, t, c = torch.randn(2, 8, 8, 4), torch.tensor([10, 700]), torch.randn(2, 512)
    with torch.no_grad():
        torch.testing.assert_close(
            predict_noise(student, x, t, c, torch.tensor([4.0])), predict_noise(teacher, x, t, c)
        )


@pytest.fixture(scope="module")
def v_module(tiny_ckpts_v) -> LdmModule:
    return LdmModule(
        load_config(
            DEMO,
            ldm_overrides(
                tiny_ckpts_v,
                "unused.jsonl",
                "runs",
                "model.unet.prediction_type=v_prediction",
                "model.min_snr_gamma=5.0",
            ),
        )
    )


@pytest.fixture(scope="module")
def tiny_ckpts_v(tmp_path_factory):
    from tests.ldm_fixtures import stage_checkpoints

    return stage_checkpoints(tmp_path_factory.mktemp("v_stages"))


def test_training_target_is_v_with_min_snr_weights(v_module):
    """The weighted loss is the Min-SNR-weighted MSE against v (weights min(SNR, 5) / (SNR + 1)); the
    unweighted (validation) loss is the epsilon MSE of the same draws."""
    module = v_module
    assert module.model.prediction_type == "v_prediction"
    a = module.alphas_cumprod
    t = torch.tensor([0, 100, 500, 999])
    snr = a[t] / (1 - a[t])
    torch.testing.assert_close(module.min_snr_weight(t), snr.clamp(max=5.0) / (snr + 1))

    torch.manual_seed(1)
    x0, condition = torch.randn(6, 8, 4, 16), torch.nn.functional.normalize(torch.randn(6, 512), dim=-1)
    with torch.no_grad():
        torch.manual_seed(5)
        weighted = module.diffusion_loss(x0, condition)
        torch.manual_seed(5)  # the same draws: dropout, t, noise
        drop = torch.rand(6) < module.condition_drop_prob
        t = torch.randint(0, a.shape[0], (6,))
        noise = torch.randn(x0.shape)
        cond = torch.where(drop[:, None], module.model.null_condition, condition)
        noisy = module.add_noise(x0, noise, t)
        out = network_output(module.model.unet, noisy, t, cond)
        per_sample = (out - v_target(x0, noise, t)).pow(2).flatten(1).mean(1)
        torch.testing.assert_close(weighted, (per_sample * module.min_snr_weight(t)).mean())
        torch.manual_seed(5)  # validation's call: the EMA UNet, no dropout, no weights, epsilon MSE
        plain = module.diffusion_loss(x0, condition, use_ema=True, drop_prob=0.0, weighted=False)
        torch.manual_seed(5)
        torch.rand(6)
        t = torch.randint(0, a.shape[0], (6,))
        noise = torch.randn(x0.shape)
        noisy = module.add_noise(x0, noise, t)
        eps = predict_noise(module.model.unet_ema.module, noisy, t, condition)
    torch.testing.assert_close(plain, (eps - noise).pow(2).mean())


def test_checkpoint_reloads_as_v(v_module, tmp_path):
    checkpoint = {"state_dict": v_module.state_dict()}
    v_module.on_save_checkpoint(checkpoint)
    path = tmp_path / "v.ckpt"
    torch.save(checkpoint, path)
    assert load_stage(path).model.prediction_type == "v_prediction"
    assert read_ldm(path).unet_config.prediction_type == "v_prediction"


def test_diffusers_export_tells_the_scheduler_and_reads_back_as_v(roberta_ldm_checkpoint, tmp_path):
    from diffusers import DDIMScheduler

    model = load_ldm(roberta_ldm_checkpoint)
    model.unet.register_to_config(prediction_type="v_prediction")  # the same weights, read as v
    assert model.prediction_type == "v_prediction"
    diffusers.write(model, tmp_path / "folder")
    scheduler = DDIMScheduler.from_pretrained(tmp_path / "folder" / "scheduler")
    assert scheduler.config.prediction_type == "v_prediction"
    back = load_ldm(tmp_path / "folder")
    assert back.prediction_type == "v_prediction"
    x, t, c = torch.randn(2, 8, 8, 4), torch.tensor([10, 990]), torch.randn(2, 512)
    with torch.no_grad():
        torch.testing.assert_close(back.denoiser(False)(x, t, c), model.denoiser(False)(x, t, c), atol=1e-5, rtol=0)
