"""convert.py and the any-layout loader on our own and diffusers layouts: ours -> diffusers folder ->
ours keeps every network's output (UNet, VAE decoder, vocoder, CLAP text embedding) to 1e-5, diffusers'
own AudioLDMPipeline loads the exported folder, generate.py runs on a diffusers folder, init_from
starts each stage from another layout, and broken inputs give one-line errors naming the problem.
(The original AudioLDM and LAION-CLAP layouts: tests/test_convert_original.py, test_convert_laion_clap.py,
test_convert_official.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import convert
import generate
from audioldm.assembly.latent_diffusion import load_ldm, read_ldm
from audioldm.checkpoint import CheckpointError
from audioldm.formats.registry import open_source
from audioldm.models.latent_diffusion import LatentDiffusion

PROMPTS = ["a dog barks", "a tone"]


@pytest.fixture(scope="module")
def roberta_ldm(roberta_ldm_checkpoint) -> Path:
    return roberta_ldm_checkpoint


@pytest.fixture(scope="module")
def exported(diffusers_folder) -> Path:
    return diffusers_folder


def network_outputs(model: LatentDiffusion) -> dict[str, torch.Tensor]:
    """Each network on fixed inputs: UNet eps, VAE decoder mel, vocoder waveform, CLAP text embedding."""
    g = torch.Generator().manual_seed(0)
    latent = torch.randn(2, model.unet.config.in_channels, 8, 4, generator=g)
    condition = torch.nn.functional.normalize(torch.randn(2, model.null_condition.shape[0], generator=g), dim=-1)
    mel = torch.randn(1, 1, 16, model.mel.n_mels, generator=g)
    with torch.no_grad():
        return {
            "unet": model.denoiser(False)(latent, torch.tensor([10, 500]), condition),
            "vae": model.decode(latent),
            "vocoder": model.vocode(mel),
            "clap_text": model.embed_text(PROMPTS),
            "null": model.null_condition.clone(),
            "scale": model.scale_factor.clone(),
        }


def assert_same_outputs(a: LatentDiffusion, b: LatentDiffusion, tol: float = 1e-5) -> None:
    out_a, out_b = network_outputs(a), network_outputs(b)
    for name in out_a:
        diff = (out_a[name] - out_b[name]).abs().max().item()
        assert diff <= tol, f"{name}: max abs diff {diff}"


def test_layouts_are_recognised(roberta_ldm, exported):
    assert open_source(roberta_ldm).name == "ours (ldm)"
    assert open_source(exported).name == "diffusers (pipeline)"
    assert open_source(exported / "unet").name == "diffusers (unet)"
    assert open_source(exported / "vae").name == "diffusers (vae)"
    assert open_source(exported / "vocoder").name == "transformers (hifigan)"
    assert open_source(exported / "text_encoder").name == "transformers (clap_text)"
    assert {p.name for p in exported.iterdir()} >= {
        "model_index.json",
        "unet",
        "vae",
        "vocoder",
        "text_encoder",
        "tokenizer",
        "scheduler",
    }


@pytest.mark.slow
def test_ours_to_diffusers_and_back_keeps_every_output(roberta_ldm, exported, tmp_path):
    ours = load_ldm(roberta_ldm)
    from_diffusers = load_ldm(exported)
    assert from_diffusers.clap.config.text_only
    assert_same_outputs(ours, from_diffusers)
    back = tmp_path / "back.ckpt"
    assert convert.main([str(exported), str(back)]) == 0
    assert_same_outputs(ours, load_ldm(back))
    assert read_ldm(back).ema is not None  # one weight set in the folder: both raw and EMA hold it


def test_diffusers_pipeline_loads_the_export_and_matches_our_text_embedding(roberta_ldm, exported):
    diffusers = pytest.importorskip("diffusers")
    pipeline_class = getattr(diffusers, "AudioLDMPipeline", None)
    if pipeline_class is None:
        pytest.skip("this diffusers version no longer ships AudioLDMPipeline")
    pipe = pipeline_class.from_pretrained(str(exported), local_files_only=True)
    tokens = pipe.tokenizer(PROMPTS, padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    with torch.no_grad():
        theirs = pipe.text_encoder(tokens.input_ids, attention_mask=tokens.attention_mask).text_embeds
    ours = load_ldm(roberta_ldm).embed_text(PROMPTS)
    assert (torch.nn.functional.normalize(theirs, dim=-1) - ours).abs().max() <= 1e-5


@pytest.mark.slow
def test_generate_runs_on_a_diffusers_folder(exported, tmp_path):
    out = tmp_path / "gen"
    assert (
        generate.main(
            ["--ckpt", str(exported), "--text", "a dog barks", "--out", str(out), "--steps", "2", "--duration", "0.32"]
        )
        == 0
    )
    assert len(list(out.glob("*.wav"))) == 1


def test_stage_conversions_write_checkpoints_our_loaders_read(roberta_ldm, exported, tmp_path):
    from audioldm.assembly.parts import load_part
    from audioldm.audio.mel import MelConfig

    mel = MelConfig()
    assert convert.main([str(exported / "vocoder"), str(tmp_path / "voc.ckpt")]) == 0
    assert convert.main([str(roberta_ldm), str(tmp_path / "vae.ckpt"), "--stage", "vae"]) == 0
    assert convert.main([str(roberta_ldm), str(tmp_path / "clap.ckpt"), "--stage", "clap"]) == 0
    model = load_ldm(roberta_ldm)
    mel_in = torch.randn(1, 1, 16, 64)
    with torch.no_grad():
        assert torch.equal(load_part(tmp_path / "voc.ckpt", "vocoder", mel).network(mel_in), model.vocode(mel_in))
        part = load_part(tmp_path / "vae.ckpt", "vae", mel)
        vae, scale = part.network, part.scale_factor
        assert float(scale) == float(model.scale_factor)
        z = torch.randn(1, 8, 4, 16)
        assert torch.equal(vae.decode(z).sample, model.vae.decode(z).sample)
        assert torch.equal(
            load_part(tmp_path / "clap.ckpt", "clap", mel).network.embed_text(PROMPTS), model.embed_text(PROMPTS)
        )


@pytest.mark.parametrize(
    "content, message",
    [
        (b"PK\x03\x04 truncated zip", "not a readable checkpoint"),
        ({"foo.weight": torch.zeros(2)}, "not a weights layout this project knows"),
        ({"state_dict": {"x": 1}}, "no tensor state dict"),
    ],
)
def test_unreadable_or_foreign_files_are_named(tmp_path, content, message):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(content) if isinstance(content, bytes) else torch.save(content, path)
    with pytest.raises(CheckpointError, match=message) as err:
        open_source(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_convert_reports_bad_input_in_one_line(roberta_ldm, exported, tmp_path, capsys):
    assert convert.main([str(tmp_path / "missing.ckpt"), str(tmp_path / "o.ckpt")]) == 2
    assert "weights not found" in capsys.readouterr().err
    assert convert.main([str(exported / "vocoder"), str(tmp_path / "o"), "--to", "diffusers"]) == 2
    assert "whole AudioLDM" in capsys.readouterr().err
    assert convert.main([str(exported / "vae"), str(tmp_path / "o.ckpt"), "--stage", "ldm"]) == 2
    assert "holds no UNet" in capsys.readouterr().err
    assert convert.main([str(roberta_ldm), str(exported)]) == 2
    assert "already exists" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert convert.main([str(tmp_path / "empty"), str(tmp_path / "o.ckpt")]) == 2
    assert "without model_index.json" in capsys.readouterr().err


def test_missing_unet_weights_are_listed(exported, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    shutil.copytree(exported, broken)
    weights = next((broken / "unet").glob("*.safetensors"))
    state = load_file(weights)
    state.pop("conv_in.weight")
    save_file(state, weights)
    with pytest.raises(CheckpointError, match="conv_in.weight"):
        read_ldm(broken)


def test_text_only_clap_refuses_audio(exported):
    model = load_ldm(exported)
    with pytest.raises(ValueError, match="only text-encoder weights"):
        model.embed_audio(torch.zeros(1, 16000))


def test_transformers_clap_folder(roberta_ldm, roberta_tokenizer_dir, tmp_path):
    """A transformers ClapModel folder (save_pretrained) gives the same weights, audio tower included,
    and text embeddings; its audio window is transformers' 10 s (the folder does not record one)."""
    from audioldm.assembly.parts import load_part
    from audioldm.audio.mel import MelConfig

    model = load_ldm(roberta_ldm)
    model.clap.model.save_pretrained(tmp_path / "clap")
    assert open_source(tmp_path / "clap").name == "transformers (clap)"
    part = load_part(tmp_path / "clap", "clap", MelConfig(), str(roberta_tokenizer_dir))
    clap = part.network
    assert not clap.config.text_only and clap.config.audio_seconds == 10.0
    mine, theirs = model.clap.model.state_dict(), clap.model.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    with torch.no_grad():
        assert (clap.embed_text(PROMPTS) - model.embed_text(PROMPTS)).abs().max() <= 1e-6
