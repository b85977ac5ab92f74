"""init_from: every stage starts from weights in another layout (fine-tuning), through train.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import train
from audioldm.assembly.latent_diffusion import load_ldm
from audioldm.audio.mel import MelConfig
from audioldm.config import load_config
from lightning_modules.stages import build_stage
from tests.conftest import write_manifest_lines, write_tone
from tests.ldm_fixtures import REPO, TINY_OVERRIDES

DEMO = REPO / "configs" / "demo"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    rows = []
    for i in range(6):
        write_tone(folder / f"c{i}.wav", 0.5, 16000, freq=300 + 50 * i, seed=i)
        rows.append(
            {"id": f"c{i}", "path": f"c{i}.wav", "captions": [f"tone {i}"], "split": "val" if i == 0 else "train"}
        )
    return write_manifest_lines(folder / "manifest.jsonl", rows)


def common(clips: Path, out: Path) -> list[str]:
    return [
        f"data.train_manifest={clips}",
        f"output_dir={out}",
        "data.num_workers=0",
        "data.batch_size=2",
        "trainer.enable_progress_bar=false",
        "trainer.max_steps=2",
        "trainer.num_sanity_val_steps=0",
        "trainer.limit_val_batches=1",
    ]


def states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.slow
def test_ldm_fine_tunes_from_a_diffusers_folder(diffusers_folder, roberta_ldm_checkpoint, clips, tmp_path):
    """The UNet starts from the folder's weights (its EMA too), the frozen VAE and vocoder are the
    folder's, the CLAP (audio encoder needed) comes from model.clap_ckpt; 2 steps train and save."""
    base = [
        *common(clips, tmp_path),
        f"init_from={diffusers_folder}",
        f"model.clap_ckpt={roberta_ldm_checkpoint}",
        "data.segment_seconds=0.64",
        "data.latent_cache_dir=null",
        "model.val_steps=2",
        "model.val_seconds=0.32",
        "model.val_prompts=[a tone]",
        "model.vae_ckpt=null",
        "model.vocoder_ckpt=null",
    ]
    config = load_config(DEMO / "ldm.yaml", base)  # model.vae_ckpt may stay unset: init_from brings the VAE
    module, _ = build_stage(config)
    source = load_ldm(diffusers_folder)
    assert states_equal(module.model.unet, source.unet) and states_equal(module.model.unet_ema.module, source.unet)
    assert states_equal(module.model.vae, source.vae) and states_equal(module.model.vocoder, source.vocoder)
    assert float(module.model.scale_factor) == float(source.scale_factor)
    assert not module.model.clap.config.text_only
    assert list(module.config.model.unet.attention_heads) == list(source.unet.config.attention_head_dim)

    assert train.main(["--config", str(DEMO / "ldm.yaml"), *base, "name=ft"]) == 0
    last = tmp_path / "ft" / "version_0" / "checkpoints" / "last.ckpt"
    tuned = load_ldm(last, use_ema=False)
    assert not states_equal(tuned.unet, source.unet)  # it trained
    assert states_equal(tuned.vae, source.vae)


def test_ldm_init_from_a_folder_without_clap_audio_encoder_is_refused(diffusers_folder, clips, tmp_path, capsys):
    args = [
        "--config",
        str(DEMO / "ldm.yaml"),
        *common(clips, tmp_path),
        f"init_from={diffusers_folder}",
        "data.latent_cache_dir=null",
        "model.vae_ckpt=null",
        "model.clap_ckpt=null",
        "model.vocoder_ckpt=null",
    ]
    assert train.main(args) == 2
    err = capsys.readouterr().err
    assert "no audio encoder" in err and "model.clap_ckpt" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "stage, config_name, source",
    [("vocoder", "hifigan", "diffusers_vocoder"), ("vae", "vae", "ldm"), ("clap", "clap", "ldm")],
)
def test_stage_networks_start_from_another_layout(
    stage, config_name, source, diffusers_folder, roberta_ldm_checkpoint, roberta_tokenizer_dir, clips, tmp_path
):
    path = diffusers_folder / "vocoder" if source == "diffusers_vocoder" else roberta_ldm_checkpoint
    extra = [f"model.tokenizer_path={roberta_tokenizer_dir}"] if stage == "clap" else []
    config = load_config(
        DEMO / f"{config_name}.yaml",
        [*common(clips, tmp_path), *TINY_OVERRIDES[config_name], *extra, f"init_from={path}"],
    )
    module, _ = build_stage(config)
    model = load_ldm(roberta_ldm_checkpoint)
    network = {
        "vocoder": module.vocoder if stage == "vocoder" else None,
        "vae": getattr(module, "vae", None),
        "clap": getattr(module, "embedder", None),
    }[stage]
    assert states_equal(network, {"vocoder": model.vocoder, "vae": model.vae, "clap": model.clap}[stage])
    if stage == "vae":
        assert float(module.scale_factor) == float(model.scale_factor)


def test_stage_init_from_with_the_wrong_shape_names_the_mismatch(roberta_ldm_checkpoint, clips, tmp_path, capsys):
    args = ["--config", str(DEMO / "vae.yaml"), *common(clips, tmp_path), f"init_from={roberta_ldm_checkpoint}"]
    assert train.main(args) == 2  # the demo VAE is bigger than the tiny one in the checkpoint
    err = capsys.readouterr().err
    assert "weights do not fit" in err and "make the config's model section match" in err


def test_init_from_must_exist(clips, tmp_path, capsys):
    args = ["--config", str(DEMO / "vae.yaml"), *common(clips, tmp_path), f"init_from={tmp_path / 'nope.ckpt'}"]
    assert train.main(args) == 2
    assert "init_from: file not found" in capsys.readouterr().err
    assert MelConfig().n_mels == 64
