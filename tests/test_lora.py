"""LoRA adapters (``model.lora``): the base frozen and bit-identical after training, only the adapter in the optimiser,
exact resume from adapter-only checkpoints, the adapter file (ours and diffusers' loader), scale 0 giving the base
exactly, stacking, fusing, and a base with another fingerprint refused."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from diffusers import UNet2DConditionModel

import app
import convert
import generate
import train
from audioldm.assembly.adapters import attach_adapters, parse_adapter
from audioldm.assembly.latent_diffusion import load_ldm
from audioldm.checkpoint import CheckpointError
from audioldm.formats.adapter_files import export_diffusers, read_adapter
from audioldm.models.lora import LoraConfig, adapter_state, add_lora, trainable_parameters
from audioldm.models.unet import UnetConfig, build_unet, predict_noise
from audioldm.pipeline.text_to_audio import TextToAudio
from audioldm.request.jobs import Jobs, default_sampling
from audioldm.request.limits import RequestError
from tests.conftest import write_manifest_lines, write_tone
from tests.ldm_fixtures import REPO, write_ldm_checkpoint

DEMO_LORA = str(REPO / "configs" / "demo" / "ldm_lora.yaml")


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A tiny LDM whose UNet is not at its initialisation (so an adapter has something to adapt)."""
    path = write_ldm_checkpoint(tmp_path_factory.mktemp("base"))
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    generator = torch.Generator().manual_seed(0)
    for key, value in checkpoint["state_dict"].items():
        if key.startswith("model.unet") and value.is_floating_point():
            value.add_(0.02 * torch.randn(value.shape, generator=generator))
    torch.save(checkpoint, path)
    return path


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    rows = []
    for i in range(7):
        write_tone(tmp_path / "audio" / f"c{i}.wav", 0.6, 16000, freq=300 + 70 * i, seed=i)
        rows.append({"id": f"c{i}", "path": f"audio/c{i}.wav", "captions": ["a high beep"], "split": "train"})
    return write_manifest_lines(tmp_path / "manifest.jsonl", rows)


def tiny_adapter_args(config: str, base_key: str, base: Path, clips: Path, out: Path, *extra: str) -> list[str]:
    """A rank-4 adapter run of ``config`` on the tiny clips, its base at ``base_key`` (init_from, teacher_ckpt)."""
    return [
        "--config",
        config,
        f"{base_key}={base}",
        f"data.train_manifest={clips}",
        f"output_dir={out}",
        "data.latent_cache_dir=null",
        "data.segment_seconds=0.64",
        "data.batch_size=3",
        "data.num_workers=0",
        "trainer.enable_progress_bar=false",
        "model.lora.rank=4",
        "model.val_seconds=0.64",
        "model.val_prompts=[a high beep]",
        *extra,
    ]


def lora_args(base: Path, clips: Path, out: Path, *extra: str) -> list[str]:
    return tiny_adapter_args(
        DEMO_LORA, "init_from", base, clips, out, "trainer.log_every_n_steps=1", "model.val_steps=2", *extra
    )


def test_adapter_starts_as_the_base_and_trains_alone():
    torch.manual_seed(0)
    unet = build_unet(UnetConfig(model_channels=16, channel_mult=[1, 2], layers_per_block=1, head_channels=8))
    x, t, c = torch.randn(2, 8, 8, 16), torch.tensor([3, 500]), torch.randn(2, 512)
    before = predict_noise(unet, x, t, c)
    add_lora(unet, LoraConfig(rank=4), "a")
    assert torch.equal(predict_noise(unet, x, t, c), before)  # B = 0
    names = {n for n, p in unet.named_parameters() if p.requires_grad}
    assert names and all(".lora_A.a." in n or ".lora_B.a." in n for n in names)
    assert trainable_parameters(unet) == sum(p.numel() for n, p in unet.named_parameters() if n in names)
    conditioned = build_unet(UnetConfig(model_channels=16, channel_mult=[1, 2], layers_per_block=1, head_channels=8))
    add_lora(conditioned, LoraConfig(rank=4, condition=True), "a")
    assert "class_embedding.lora_A.weight" in adapter_state(conditioned, "a")  # the FiLM projection adapted too


def test_adapter_arguments():
    assert parse_adapter("a.safetensors") == ("a.safetensors", 1.0)
    assert parse_adapter("a.safetensors:0.5") == ("a.safetensors", 0.5)
    with pytest.raises(ValueError, match="must be a number"):
        parse_adapter("a.safetensors:x")


@pytest.mark.slow
def test_lora_run_end_to_end(base, clips, tmp_path, capsys):
    """Train an adapter on the tiny base (run A stops at step 2 and resumes to 4, run B goes straight to 4: the same
    adapter); the base's weights are untouched, the checkpoints hold the adapter only, and its file applies."""
    out = tmp_path / "runs"
    assert train.main(lora_args(base, clips, out, "name=a", "trainer.max_steps=2")) == 0
    resume = out / "a" / "version_0" / "checkpoints" / "last.ckpt"
    assert train.main(lora_args(base, clips, out, "name=a", "trainer.max_steps=4", f"resume={resume}")) == 0
    assert train.main(lora_args(base, clips, out, "name=b", "trainer.max_steps=4")) == 0
    assert train.main(lora_args(base, clips, out, "name=c", "trainer.max_steps=1", "trainer.precision=bf16-mixed")) == 0
    a = torch.load(resume, map_location="cpu", weights_only=False)
    b = torch.load(out / "b" / "version_0" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert a["global_step"] == b["global_step"] == 4 and a["adapter"]["base"]["source"] == str(base)
    assert a["state_dict"] and all(".lora_A." in k or ".lora_B." in k for k in a["state_dict"])
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(value, b["state_dict"][key], rtol=0, atol=0, msg=key)
    optimizer = a["optimizer_states"][0]["state"]
    assert sum(s["exp_avg"].numel() for s in optimizer.values()) == sum(v.numel() for v in a["state_dict"].values())
    assert any(v.abs().sum() > 0 for k, v in a["state_dict"].items() if ".lora_B." in k)  # it learnt something

    adapter = out / "b" / "version_0" / "adapter" / "adapter.safetensors"
    state, meta = read_adapter(adapter)
    assert meta["step"] == 4 and meta["lora"]["rank"] == 4 and meta["base"]["condition"] == "film_clap"
    assert any(".conv1.lora_A." in k for k in state)  # the shipped targets: the res blocks' convs too
    assert adapter.stat().st_size < 0.1 * base.stat().st_size
    for key in a["state_dict"]:
        plain = key.removeprefix("model.unet.").replace(".default.", ".")
        torch.testing.assert_close(state[plain], a["state_dict"][key], rtol=0, atol=0)

    # the base is bit-identical, and the adapter at scale 0 gives it exactly; at scale 1 what the run trained
    plain_model = load_ldm(base)
    x, t, c = torch.randn(2, 8, 16, 16), torch.tensor([5, 900]), torch.randn(2, 512)
    with torch.no_grad():
        reference = predict_noise(plain_model.unet, x, t, c)
        zero = load_ldm(base, adapters=[(str(adapter), 0.0)])
        assert torch.equal(predict_noise(zero.unet, x, t, c), reference)
        one = load_ldm(base, adapters=[(str(adapter), 1.0)])
        adapted = predict_noise(one.unet, x, t, c)
        assert (adapted - reference).abs().max() > 1e-6
        fused = load_ldm(base, adapters=[(str(adapter), 1.0)], fuse_adapters=True)
        assert not any("lora" in k for k in fused.unet.state_dict())
        torch.testing.assert_close(predict_noise(fused.unet, x, t, c), adapted, rtol=1e-4, atol=1e-5)
        stacked = load_ldm(base, adapters=[(str(adapter), 0.5), (str(adapter), 0.5)])
        torch.testing.assert_close(predict_noise(stacked.unet, x, t, c), adapted, rtol=1e-4, atol=1e-5)
    saved = torch.load(base, map_location="cpu", weights_only=False)["state_dict"]
    for key, value in plain_model.unet.state_dict().items():
        torch.testing.assert_close(value, saved[f"model.unet_ema.module.{key}"], rtol=0, atol=0)

    # diffusers' own loader reads the file as it is: the same UNet output
    folder = export_diffusers(adapter, tmp_path / "diffusers_lora").parent
    theirs = load_ldm(base).unet
    assert isinstance(theirs, UNet2DConditionModel)
    theirs.load_lora_adapter(str(folder), prefix=None, adapter_name="theirs", use_safetensors=True)
    with torch.no_grad():
        torch.testing.assert_close(predict_noise(theirs, x, t, c), adapted, rtol=1e-5, atol=1e-6)

    # convert.py merges it into a whole checkpoint
    merged = tmp_path / "merged.ckpt"
    assert convert.main([str(base), str(merged), "--lora", str(adapter)]) == 0
    with torch.no_grad():
        torch.testing.assert_close(predict_noise(load_ldm(merged).unet, x, t, c), adapted, rtol=1e-4, atol=1e-5)

    # another base is refused by name, unless forced; generate.py takes --lora
    other = write_ldm_checkpoint(tmp_path / "other", seed=3)
    with pytest.raises(CheckpointError, match="trained on another base UNet"):
        attach_adapters(load_ldm(other), [(str(adapter), 1.0)])
    attach_adapters(load_ldm(other), [(str(adapter), 1.0)], force=True)
    common = ["--ckpt", str(base), "--text", "a high beep", "--steps", "2", "--duration", "0.64"]
    assert generate.main([*common, "--lora", f"{adapter}:0.7", "--out", str(tmp_path / "gen")]) == 0
    assert generate.main([*common, "--lora", f"{adapter}", "--fuse-lora", "--out", str(tmp_path / "gen2")]) == 0
    capsys.readouterr()
    assert generate.main([*common, "--lora", f"{adapter}:9", "--out", str(tmp_path / "gen3")]) == 2
    assert "--lora scale must be from -4 to 4, got 9" in capsys.readouterr().err
    assert generate.main(["--ckpt", str(other), *common[2:], "--lora", str(adapter), "--out", str(tmp_path / "g")]) == 2
    assert "trained on another base UNet" in capsys.readouterr().err
    # the app: a scale slider per adapter, each request at the scales set; 0 gives the base's clip
    pipe = TextToAudio.from_checkpoint(str(base), adapters=[(str(adapter), 1.0)])
    jobs = Jobs(pipe, str(tmp_path / "app"), max_seconds=3.0, adapters=[(str(adapter), 1.0)])
    fast = replace(default_sampling(pipe), steps=2)
    options = fast.options()

    def latent(pipeline: TextToAudio) -> torch.Tensor:
        return pipeline.text_to_audio(["a high beep"], 0.64, options).latent

    adapted_latent = latent(pipe)
    assert f"--lora {adapter}:1" in jobs.text("a high beep", 0.64, 1, fast).settings["command"]
    assert jobs.set_adapter_scales([0.0]) == [0.0]
    assert f"--lora {adapter}:0" in jobs.text("a high beep", 0.64, 1, fast).settings["command"]
    base_latent = latent(TextToAudio.from_checkpoint(str(base)))
    assert torch.equal(latent(pipe), base_latent) and not torch.equal(adapted_latent, base_latent)
    with pytest.raises(RequestError, match="--lora scale must be from -4 to 4"):
        jobs.set_adapter_scales([7.0])
    app.build_app(pipe, str(base), str(tmp_path / "page"), 3.0, adapters=[(str(adapter), 1.0)])

    # a LoRA run's checkpoint is not a whole model: generating from it says what to do
    assert generate.main(["--ckpt", str(resume), *common[2:], "--out", str(tmp_path / "g4")]) == 2
    assert "generate with --ckpt" in capsys.readouterr().err
    assert json.loads(adapter.with_suffix(".json").read_text())["format"] == "audioldm-lora"


def test_condition_pathway_of_a_cross_attention_unet():
    """condition: true adapts the key and value projections of the text tokens (the cross-attending transformers'),
    not the self-attention-only ones."""
    shape = UnetConfig(model_channels=16, channel_mult=[1, 2], layers_per_block=1, head_channels=8, context_dim=6)
    unet = build_unet(shape)
    add_lora(unet, LoraConfig(rank=2, targets=["to_q"], condition=True), "a")
    adapted = {k.split(".lora_")[0] for k in adapter_state(unet, "a")}
    crossing = {k for k in adapted if k.endswith(("attn2.to_k", "attn2.to_v"))}
    # each res block's transformers: [2i] self-attention only, [2i + 1] cross-attending
    assert crossing and all(int(k.split(".attentions.")[1].split(".")[0]) % 2 == 1 for k in crossing)
    assert all(k.endswith(("to_q", "attn2.to_k", "attn2.to_v")) for k in adapted)


@pytest.mark.slow
def test_lcm_lora_generates_in_four_steps(base, clips, tmp_path):
    """stage lcm with model.lora distils into an adapter on the teacher; with it, the teacher samples with lcm."""
    out = tmp_path / "runs"
    config = str(REPO / "configs" / "demo" / "lcm_lora.yaml")
    assert train.main(tiny_adapter_args(config, "model.teacher_ckpt", base, clips, out, "trainer.max_steps=2")) == 0
    adapter = next(out.glob("demo_lcm_lora/version_0/adapter/adapter.safetensors"))
    state, meta = read_adapter(adapter)
    assert meta["kind"] == "lcm" and meta["guidance"] == [2.5, 2.5] and meta["lora"]["rank"] == 4
    model = load_ldm(base, adapters=[(str(adapter), 1.0)])
    assert model.samplers == ("lcm",) and load_ldm(base).samplers != ("lcm",)
    common = ["--ckpt", str(base), "--lora", str(adapter), "--text", "a high beep", "--duration", "0.64"]
    assert generate.main([*common, "--sampler", "lcm", "--steps", "4", "--out", str(tmp_path / "gen")]) == 0
    assert (tmp_path / "gen" / "000_a_high_beep.wav").is_file()


def test_training_steps_leave_the_base_bit_identical(base, tmp_path):
    """Optimiser steps of a model.lora module change the adapter only: every base weight is bit-identical."""
    from audioldm.config import load_config
    from lightning_modules.ldm import LdmModule

    overrides = lora_args(base, tmp_path / "unused.jsonl", tmp_path, "model.lora.rank=4")[2:]
    module = LdmModule(load_config(DEMO_LORA, overrides))
    before = {k: v.clone() for k, v in module.model.unet.state_dict().items()}
    optimizer = torch.optim.AdamW([p for p in module.model.unet.parameters() if p.requires_grad], lr=1e-2)
    assert {id(p) for g in optimizer.param_groups for p in g["params"]} == {
        id(p) for n, p in module.model.unet.named_parameters() if ".lora_" in n
    }
    for _ in range(2):
        x0, condition = torch.randn(2, 8, 16, 16), torch.randn(2, 512)
        module.diffusion_loss(x0, condition).backward()
        optimizer.step()
        optimizer.zero_grad()
    after = module.model.unet.state_dict()
    for key, value in before.items():
        if ".lora_B." in key:
            assert not torch.equal(after[key], value), key  # the adapter learnt
        elif ".lora_" not in key:
            assert torch.equal(after[key], value), key
