"""Tiny, randomly initialised stage checkpoints in this project's format (no training, no
downloads), and a tiny ldm config that uses them: the inputs of every LDM/pipeline test."""

from __future__ import annotations

from pathlib import Path

import torch

from audioldm.config import load_config
from audioldm.config.loader import config_to_dict
from lightning_modules.stages import module_class

REPO = Path(__file__).resolve().parents[1]
TINY_OVERRIDES = {
    "vae": [
        "model.block_out_channels=[8,16,16]",
        "model.layers_per_block=1",
        "model.norm_num_groups=4",
        "model.disc_channels=8",
    ],
    "clap": [
        "model.text_hidden_size=32",
        "model.text_layers=1",
        "model.text_heads=2",
        "model.text_intermediate_size=64",
        "model.audio_patch_embeds_hidden_size=16",
        "model.audio_depths=[1,1]",
        "model.audio_heads=[1,2]",
        "model.audio_seconds=1.0",
    ],
    "hifigan": ["model.upsample_initial_channel=32", "model.disc_width=0.0625"],
    "vocoder": ["model.istft_channels=16", "model.istft_layers=1", "model.istft_inference_phase_iters=4"],
}
TINY_UNET = [
    "model.unet.model_channels=16",
    "model.unet.channel_mult=[1,2]",
    "model.unet.layers_per_block=1",
    "model.unet.head_channels=8",
]


def write_stage_checkpoint(
    name: str, path: Path, seed: int = 0, scale_factor: float = 0.5, extra: tuple[str, ...] = ()
) -> Path:
    """A checkpoint of ``configs/demo/<name>.yaml`` at tiny size with random weights."""
    config = load_config(
        REPO / "configs" / "demo" / f"{name}.yaml", ["data.train_manifest=unused.jsonl", *TINY_OVERRIDES[name], *extra]
    )
    torch.manual_seed(seed)
    module = module_class(config.stage)(config)
    state = module.state_dict()
    if config.stage == "vae":
        state["scale_factor"] = torch.tensor(scale_factor)
    torch.save({"config": config_to_dict(config), "stage": config.stage, "state_dict": state}, path)
    return path


def stage_checkpoints(folder: Path, clap_extra: tuple[str, ...] = ()) -> dict[str, Path]:
    """{"vae", "clap", "vocoder"} -> tiny random checkpoints written under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "vae": write_stage_checkpoint("vae", folder / "vae.ckpt"),
        "clap": write_stage_checkpoint("clap", folder / "clap.ckpt", seed=1, extra=clap_extra),
        "vocoder": write_stage_checkpoint("hifigan", folder / "vocoder.ckpt", seed=2),
    }


def ldm_overrides(
    ckpts: dict[str, Path], manifest: Path | str = "unused.jsonl", out: Path | str = "runs", *extra: str
) -> list[str]:
    """Overrides of configs/demo/ldm.yaml for a tiny run on the given stage checkpoints."""
    return [
        f"data.train_manifest={manifest}",
        f"output_dir={out}",
        f"model.vae_ckpt={ckpts['vae']}",
        f"model.clap_ckpt={ckpts['clap']}",
        f"model.vocoder_ckpt={ckpts['vocoder']}",
        *TINY_UNET,
        "data.num_workers=0",
        "trainer.enable_progress_bar=false",
        "model.val_steps=3",
        "model.val_seconds=0.64",
        "model.val_prompts=[a low tone,a high beep]",
        *extra,
    ]


def write_ldm_checkpoint(
    folder: Path, seed: int = 0, clap_extra: tuple[str, ...] = (), extra: tuple[str, ...] = ()
) -> Path:
    """An untrained tiny LDM checkpoint (with its frozen parts) as train.py writes it; ``clap_extra``:
    overrides of the CLAP's config (e.g. ``model.tokenizer_path=...``), ``extra``: of the LDM's."""
    from lightning_modules.ldm import LdmModule

    ckpts = stage_checkpoints(folder, clap_extra)
    config = load_config(REPO / "configs" / "demo" / "ldm.yaml", ldm_overrides(ckpts, "unused.jsonl", "runs", *extra))
    torch.manual_seed(seed)
    module = LdmModule(config)
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    path = folder / "ldm.ckpt"
    torch.save(checkpoint, path)
    return path


def write_lcm_checkpoint(folder: Path, teacher: Path, seed: int = 0) -> Path:
    """An untrained consistency-distillation student of the tiny ``teacher`` LDM, as train.py writes it."""
    from lightning_modules.lcm import LcmModule

    config = load_config(
        REPO / "configs" / "demo" / "lcm.yaml",
        ["data.train_manifest=unused.jsonl", f"model.teacher_ckpt={teacher}", "model.guidance_embed_dim=32"],
    )
    torch.manual_seed(seed)
    module = LcmModule(config)
    torch.nn.init.normal_(module.model.unet.time_embedding.cond_proj.weight, std=0.1)  # guidance matters
    module.model.unet_ema.module.load_state_dict(module.model.unet.state_dict())
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "lcm.ckpt"
    torch.save(checkpoint, path)
    return path
