"""Consistency distillation (stage lcm): the LCM scheduler and the loss against their formulas, the guidance
embedding against diffusers', the student's start, a tiny train.py run (loss falls, exact resume), and the
student's checkpoint through load_stage and generate.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import LatentConsistencyModelPipeline

import generate
import train
from audioldm.assembly.student import student_unet
from audioldm.config import load_config
from audioldm.diffusion.consistency import (
    boundary_scalings,
    consistency_function,
    consistency_loss,
    guidance_embedding,
    solver_grid,
)
from audioldm.diffusion.schedule import make_scheduler
from audioldm.models.unet import UnetConfig, build_unet, predict_noise
from audioldm.pipeline.text_to_audio import SamplingOptions, TextToAudio
from lightning_modules.lcm import LcmModule
from lightning_modules.loading import load_stage
from tests.conftest import write_manifest_lines, write_tone
from tests.ldm_fixtures import REPO, write_ldm_checkpoint

DEMO_LCM = str(REPO / "configs" / "demo" / "lcm.yaml")
TINY = UnetConfig(model_channels=16, channel_mult=[1, 2], layers_per_block=1, head_channels=8)
ALPHAS = make_scheduler("ddpm").alphas_cumprod


def test_lcm_scheduler_samples_the_distillation_grid():
    grid = solver_grid(50)
    assert grid[0] == 19 and grid[-1] == 999 and len(grid) == 50 and (grid.diff() == 20).all()
    scheduler = make_scheduler("lcm")
    scheduler.set_timesteps(4)
    steps = scheduler.timesteps
    assert steps[0] == 999 and (steps.diff() < 0).all() and set(steps.tolist()) <= set(grid.tolist())
    skip, out = boundary_scalings(torch.tensor([0, 999]))
    assert skip[0] == 1 and out[0] == 0  # f(x, 0) = x: the boundary condition
    torch.testing.assert_close(skip[1], torch.tensor(0.25 / (9990.0**2 + 0.25)))
    x, eps = torch.randn(2, 8, 4, 4), torch.randn(2, 8, 4, 4)
    torch.testing.assert_close(consistency_function(x, torch.tensor([0, 0]), eps, ALPHAS), x)


def test_one_lcm_step_against_the_formulas():
    scheduler = make_scheduler("lcm")
    scheduler.set_timesteps(2)
    t, t_next = scheduler.timesteps.tolist()
    x, eps = torch.randn(1, 8, 4, 4), torch.randn(1, 8, 4, 4)
    out = scheduler.step(eps, t, x, generator=torch.Generator().manual_seed(0))
    a, a_next = ALPHAS[t], ALPHAS[t_next]
    x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
    c_skip, c_out = boundary_scalings(torch.tensor([t]))
    denoised = c_skip * x + c_out * x0
    torch.testing.assert_close(out.denoised, denoised)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.prev_sample, a_next.sqrt() * denoised + (1 - a_next).sqrt() * noise)
    last = scheduler.step(eps, t_next, out.prev_sample)
    torch.testing.assert_close(last.prev_sample, last.denoised)  # the last step returns the denoised sample


def test_guidance_embedding_is_lcms_and_zero_at_guidance_one():
    w = torch.tensor([1.0, 2.5, 10.0])
    theirs = LatentConsistencyModelPipeline.get_guidance_scale_embedding(None, w - 1, embedding_dim=256)
    zero = LatentConsistencyModelPipeline.get_guidance_scale_embedding(None, torch.zeros(1), embedding_dim=256)
    ours = guidance_embedding(w, 256)
    torch.testing.assert_close(ours, theirs - zero, atol=2e-3, rtol=0)  # float32 sin of arguments up to 9000 rad
    assert ours[0].abs().max() == 0 and ours[1].abs().max() > 0.1


def test_student_starts_as_the_teacher_and_guidance_changes_it():
    torch.manual_seed(0)
    teacher = build_unet(TINY)
    student, config = student_unet(teacher, TINY, 32)
    assert config.guidance_embed_dim == 32 and student.config.time_cond_proj_dim == 32
    x, t, c = torch.randn(2, 8, 8, 4), torch.tensor([10, 700]), torch.randn(2, 512)
    with torch.no_grad():
        plain = predict_noise(teacher, x, t, c)
        torch.testing.assert_close(predict_noise(student, x, t, c, torch.tensor([7.0])), plain)
        torch.nn.init.normal_(student.time_embedding.cond_proj.weight, std=0.5)
        at = {w: predict_noise(student, x, t, c, torch.tensor([w])) for w in (1.0, 3.0, 8.0)}
    torch.testing.assert_close(at[1.0], plain)  # W = 1: the unguided student, whatever the embedding learnt
    assert (at[3.0] - at[8.0]).abs().max() > 1e-3 and (at[3.0] - plain).abs().max() > 1e-3
    with pytest.raises(ValueError, match="sampler 'lcm'"):
        predict_noise(student, x, t, c)


def test_loss_is_zero_at_a_constructed_fixed_point():
    """Student = target = a network whose consistency function is the constant x*: f(x_s, s) = f(x_t, t) for
    any teacher step, so the loss is 0 (grid index >= 1, where c_out > 0); a different target is not."""
    torch.manual_seed(0)
    x_star = torch.randn(3, 8, 4, 4)

    def constant(x, t, c, w):  # eps such that c_skip x + c_out x0_hat = x*
        a = ALPHAS[t].reshape(-1, 1, 1, 1)
        skip, out = (v.reshape(-1, 1, 1, 1) for v in boundary_scalings(t))
        x0 = (x_star - skip * x) / out
        return (x - a.sqrt() * x0) / (1 - a).sqrt()

    def teacher(x, t, c):
        return torch.randn_like(x)

    args = (torch.randn(3, 8, 4, 4), torch.randn(3, 512), torch.zeros(512), torch.tensor([1.0, 4.0, 9.0]), ALPHAS)
    index = torch.tensor([1, 20, 49])
    for kind in ("huber", "l2"):
        loss = consistency_loss(constant, constant, teacher, *args, loss=kind, index=index)
        assert float(loss) < 1e-6
    shifted = lambda x, t, c, w: constant(x, t, c, w) + 0.1  # noqa: E731
    assert float(consistency_loss(constant, shifted, teacher, *args, loss="l2", index=index)) > 1e-4


def test_guidance_one_ignores_the_unconditional_teacher():
    """At W = 1 the teacher's guided step is its conditional step: the null condition's output does not matter."""
    torch.manual_seed(0)
    student = lambda x, t, c, w: 0.5 * x  # noqa: E731
    losses = []
    args = (torch.randn(2, 8, 4, 4), torch.randn(2, 512), torch.zeros(512), torch.ones(2), ALPHAS)
    for garbage in (0.0, 5.0):

        def teacher(x, t, c, garbage=garbage):
            e = 0.3 * x
            e[x.shape[0] // 2 :] += garbage  # the unconditional half
            return e

        losses.append(consistency_loss(student, student, teacher, *args, generator=torch.Generator().manual_seed(1)))
    torch.testing.assert_close(losses[0], losses[1])


# -- the stage end to end ---------------------------------------------------------------------------------
@pytest.fixture
def tone_clips(tmp_path: Path) -> Path:
    rows = []
    for i in range(8):
        write_tone(tmp_path / "audio" / f"c{i}.wav", 0.64, freq=200 + 90 * i, seed=i)
        rows.append(
            {
                "id": f"c{i}",
                "path": f"audio/c{i}.wav",
                "captions": [f"tone {i}"],
                "split": "val" if i % 4 == 0 else "train",
            }
        )
    return write_manifest_lines(tmp_path / "manifest.jsonl", rows)


def lcm_overrides(teacher: Path, manifest: Path, out: Path, *extra: str) -> list[str]:
    return [
        f"model.teacher_ckpt={teacher}",
        f"data.train_manifest={manifest}",
        f"output_dir={out}",
        "data.latent_cache_dir=null",
        "data.segment_seconds=0.64",
        "data.batch_size=3",
        "data.num_workers=0",
        "model.guidance_embed_dim=32",
        "model.val_seconds=0.64",
        "model.val_prompts=[a low tone]",
        "trainer.enable_progress_bar=false",
        "trainer.log_every_n_steps=1",
        "trainer.check_val_every_n_epoch=1",
        "optim.warmup_steps=0",
        *extra,
    ]


@pytest.mark.slow
def test_distillation_trains_resumes_exactly_and_generates(tiny_ldm_checkpoint, tone_clips, tmp_path, capsys):
    out = tmp_path / "runs"

    def run(*extra: str) -> int:
        return train.main(["--config", DEMO_LCM, *lcm_overrides(tiny_ldm_checkpoint, tone_clips, out, *extra)])

    assert run("name=a", "trainer.max_steps=3") == 0  # mid-epoch
    resume = out / "a" / "version_0" / "checkpoints" / "last.ckpt"
    assert run("name=a", "trainer.max_steps=5", f"resume={resume}") == 0
    assert run("name=b", "trainer.max_steps=5") == 0
    a = torch.load(resume, map_location="cpu", weights_only=False)
    b = torch.load(out / "b" / "version_0" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert a["stage"] == "lcm" and a["samplers"] == ["lcm"] and a["global_step"] == 5
    assert a["config"]["model"]["unet"]["guidance_embed_dim"] == 32
    assert not any(k.startswith("teacher") for k in a["state_dict"])  # the teacher is not saved
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(value, b["state_dict"][key], rtol=0, atol=0, msg=key)

    # loads without the teacher, and only with the lcm sampler
    module = load_stage(resume, stage="lcm")
    assert module.teacher is None and module.model.samplers == ("lcm",)
    pipe = TextToAudio(module.model)
    clip = pipe.text_to_audio(["a low tone"], 0.64, SamplingOptions(steps=2, sampler="lcm", guidance=4.0))
    assert clip.waveform.shape == (1, 10240) and torch.isfinite(clip.waveform).all()
    with pytest.raises(ValueError, match="lcm sampler only"):
        pipe.text_to_audio(["a low tone"], 0.64, SamplingOptions(steps=2, sampler="ddim"))
    with pytest.raises(ValueError, match="negative prompts"):
        pipe.text_to_audio(["a low tone"], 0.64, SamplingOptions(steps=2, sampler="lcm", negative="noise"))
    assert (
        generate.main(
            [
                "--ckpt",
                str(resume),
                "--text",
                "a low tone",
                "--out",
                str(tmp_path / "gen"),
                "--sampler",
                "lcm",
                "--guidance",
                "4",
                "--duration",
                "0.64",
            ]
        )
        == 0
    )
    assert (tmp_path / "gen" / "000_a_low_tone.wav").is_file()
    capsys.readouterr()
    assert (
        generate.main(
            [
                "--ckpt",
                str(tiny_ldm_checkpoint),
                "--text",
                "a low tone",
                "--out",
                str(tmp_path / "g2"),
                "--sampler",
                "lcm",
                "--duration",
                "0.64",
            ]
        )
        == 2
    )
    assert "needs a consistency-distilled checkpoint" in capsys.readouterr().err


@pytest.mark.slow
def test_distillation_lowers_the_loss(tone_clips, tmp_path):
    """Fixed draws (the validation loss): 30 steps on 6 random latents lower the consistency loss (the
    pseudo-Huber default), with the target following the student as in training. The random teacher is an
    epsilon UNet at guidance 5-12: its ODE is far from consistent, so there is something to learn (a random
    v-prediction teacher implies x_0 ~ sqrt(a_t) x_t, nearly consistent already: its loss starts at 0.018)."""
    teacher = write_ldm_checkpoint(tmp_path / "teacher", extra=("model.unet.prediction_type=epsilon",))
    config = load_config(
        DEMO_LCM, lcm_overrides(teacher, tone_clips, tmp_path, "model.guidance_min=5.0", "model.guidance_max=12.0")
    )
    torch.manual_seed(0)
    module = LcmModule(config)
    x0 = torch.randn(6, 8, 16, 16)
    condition = torch.nn.functional.normalize(torch.randn(6, 512), dim=-1)

    def fixed_loss() -> float:
        with torch.no_grad():
            return float(module.distillation_loss(x0, condition, torch.Generator().manual_seed(0)))

    before = fixed_loss()
    optimizer = torch.optim.Adam(module.model.unet.parameters(), lr=3e-4)
    for step in range(30):
        loss = module.distillation_loss(x0, condition, torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        module.model.unet_ema.update(module.model.unet)
    assert fixed_loss() < 0.93 * before  # measured: 1.31 -> 1.17


@pytest.mark.slow
def test_paper_config_runs_one_distillation_step(tiny_ldm_checkpoint, tmp_path):
    """configs/lcm_s.yaml (10.24 s segments, AudioLDM-S's solver grid and loss) for one step on a tiny teacher;
    the AudioLDM-S student itself is built on the meta device (185.0M + its guidance embedding)."""
    config = load_config(
        REPO / "configs" / "lcm_s.yaml",
        [
            f"model.teacher_ckpt={tiny_ldm_checkpoint}",
            "data.train_manifest=unused.jsonl",
            "model.teacher_head_channels=null",
            "trainer.precision=32-true",
        ],
    )
    module = LcmModule(config)
    frames = round(10.24 * 16000 / 160) // 4
    loss = module.training_step({"posterior": torch.randn(1, 16, frames, 16), "clap_audio": torch.randn(1, 512)}, 0)
    loss.backward()
    assert torch.isfinite(loss) and module.model.unet.time_embedding.cond_proj.weight.grad.abs().sum() > 0
    with torch.device("meta"):
        teacher = build_unet(UnetConfig())
        student, _ = student_unet(teacher, UnetConfig(), config.model.guidance_embed_dim)
    extra = sum(p.numel() for p in student.parameters()) - sum(p.numel() for p in teacher.parameters())
    assert extra == 256 * student.config.block_out_channels[0]  # cond_proj: 256 -> the timestep features


@pytest.mark.slow
def test_student_edits_with_the_lcm_sampler(tiny_lcm_checkpoint):
    """Style transfer (a shallow start over the lcm steps) and inpainting (the kept region re-imposed) work with
    the student; the kept part of an inpainted clip's latent is the source's own."""
    pipe = TextToAudio.from_checkpoint(str(tiny_lcm_checkpoint))
    source = torch.sin(torch.arange(16000) / 16000 * 2 * torch.pi * 300) * 0.3
    options = SamplingOptions(steps=4, sampler="lcm", guidance=3.0)
    moved = pipe.style_transfer(source, "a high beep", 0.5, options)
    assert torch.isfinite(moved.waveform).all() and moved.waveform.shape == (1, 16000)
    kept = pipe.style_transfer(source, "a high beep", 0.0, options)
    torch.testing.assert_close(kept.latent, pipe._encode_source(source)[0])
    filled = pipe.inpaint(source, "a high beep", [(0.5, 1.0)], options)
    latent, _, _ = pipe._encode_source(source)
    torch.testing.assert_close(filled.latent[..., :8, :], latent[..., :8, :])
    assert (filled.latent[..., 16:, :] - latent[..., 16:, :]).abs().max() > 1e-3
