"""Audio-to-audio variation and negative prompts on a tiny random checkpoint (CPU), pipeline and CLI."""

from __future__ import annotations

import json

import pytest
import soundfile as sf
import torch

import generate
from audioldm.audio.mel import normalize_waveform
from audioldm.pipeline.text_to_audio import SamplingOptions, TextToAudio
from tests.conftest import write_tone

FAST = SamplingOptions(steps=3, sampler="dpmsolver++", seed=3)


@pytest.fixture(scope="module")
def pipe(tiny_ldm_checkpoint) -> TextToAudio:
    return TextToAudio.from_checkpoint(str(tiny_ldm_checkpoint))


def source_clip(seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(seconds * 16000)) / 16000
    return 0.4 * torch.sin(2 * torch.pi * 330 * t) + 0.2  # the offset is removed before CLAP


def options(**changes) -> SamplingOptions:
    return SamplingOptions(**{**FAST.__dict__, **changes})


@pytest.mark.slow
def test_empty_negative_is_the_output_without_one(pipe):
    plain = pipe.text_to_audio(["a dog barks"], 0.5, options(guidance=4.0))
    empty = pipe.text_to_audio(["a dog barks"], 0.5, options(guidance=4.0, negative="  "))
    torch.testing.assert_close(empty.latent, plain.latent, rtol=0, atol=0)
    other = pipe.text_to_audio(["a dog barks"], 0.5, options(guidance=4.0, negative="low quality, noisy"))
    assert (other.latent - plain.latent).abs().max() > 1e-3  # the tiny vocoder's audio is near silent


@pytest.mark.slow
def test_negative_replaces_the_null_condition(pipe):
    # e_neg + w (e_c - e_neg) with the prompt itself as the negative is e_c: guidance without effect
    same = pipe.text_to_audio(["rain"], 0.5, options(guidance=6.0, negative="rain"))
    unguided = pipe.text_to_audio(["rain"], 0.5, options(guidance=1.0))
    torch.testing.assert_close(same.latent, unguided.latent, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_variation_condition_is_the_source_audio_embedding(pipe):
    wave = source_clip()
    expected = pipe.model.embed_audio(normalize_waveform(wave)[None])
    torch.testing.assert_close(pipe.variation_condition(wave), expected, rtol=0, atol=0)
    result = pipe.variation(wave, seconds=0.5, n_outputs=2, options=FAST)
    direct = pipe.from_embeddings(expected.expand(2, -1), 0.5, FAST)
    torch.testing.assert_close(result.latent, direct.latent, rtol=0, atol=0)
    assert result.waveform.shape == (2, 8000) and result.texts == ["variation", "variation"]


def test_variation_mixes_a_text_embedding(pipe):
    wave = source_clip()
    audio, text = pipe.variation_condition(wave), pipe.model.embed_text(["birdsong"])
    mixed = pipe.variation_condition(wave, "birdsong", 0.7)
    expected = 0.7 * audio + 0.3 * text
    torch.testing.assert_close(mixed, expected / expected.norm(dim=-1, keepdim=True))
    only_text = pipe.variation_condition(wave, "birdsong", 0.0)
    torch.testing.assert_close(only_text, text / text.norm(dim=-1, keepdim=True))


@pytest.mark.slow
def test_variation_candidates_are_ranked_against_the_source(pipe):
    wave = source_clip()
    result = pipe.variation(wave, "birdsong", 0.5, 0.5, 1, options(n_candidates=3))
    source = pipe.variation_condition(wave)
    score = (pipe.model.embed_audio(normalize_waveform(result.waveform)) * source).sum(-1)
    torch.testing.assert_close(result.clap_score, score, rtol=1e-4, atol=1e-5)
    drawn = [
        pipe.variation(wave, "birdsong", 0.5, 0.5, 1, options(seed=FAST.seed + 1_000_003 * k)) for k in range(3)
    ]  # candidate k of output 0 draws from seed + 1_000_003 k
    scores = [float((pipe.model.embed_audio(normalize_waveform(d.waveform)) * source).sum()) for d in drawn]
    assert float(result.clap_score[0]) == pytest.approx(max(scores), abs=1e-4)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"audio_weight": 1.5, "text": "x"}, "audio weight must be in [0, 1], got 1.5"),
        ({"audio_weight": 0.5}, "audio weight 0.5 needs a text to mix with"),
        ({"text": " "}, "a prompt is empty"),
    ],
)
def test_variation_input_errors(pipe, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        pipe.variation(source_clip(), seconds=0.5, options=FAST, **kwargs)
    with pytest.raises(ValueError, match="source audio is too short"):
        pipe.variation(torch.zeros(100), seconds=0.5, options=FAST)


def cli(ckpt, out, *args: str) -> int:
    return generate.main(["--ckpt", str(ckpt), "--out", str(out), "--steps", "2", "--sampler", "dpmsolver++", *args])


@pytest.mark.slow
def test_cli_variation_and_negative(tiny_ldm_checkpoint, tmp_path):
    source = write_tone(tmp_path / "in.wav", 0.9, 22050)
    out = tmp_path / "var"
    assert (
        cli(
            tiny_ldm_checkpoint,
            out,
            "--mode",
            "variation",
            "--audio",
            str(source),
            "--text",
            "rain",
            "--audio-weight",
            "0.7",
            "--repeat",
            "2",
            "--duration",
            "0.5",
            "--negative",
            "noisy",
        )
        == 0
    )
    rows = [json.loads(line) for line in (out / "generated.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and rows[0]["captions"] == ["variation of in.wav: rain"]
    data, rate = sf.read(out / rows[1]["path"])
    assert rate == 16000 and data.shape == (8000,)
    settings = json.loads((out / "generate.json").read_text())["settings"]
    assert settings["negative"] == "noisy" and settings["audio_weight"] == 0.7


@pytest.mark.parametrize(
    "args,message",
    [
        (["--mode", "variation", "--text", "x"], "error: --mode variation needs a source clip (--audio)"),
        (["--text", "x", "--audio-weight", "0.5"], "error: --audio-weight is for --mode variation"),
        (
            ["--mode", "variation", "--audio", "{wav}", "--audio-weight", "2"],
            "error: --audio-weight must be from 0 to 1, got 2",
        ),
        (["--mode", "variation", "--audio", "{wav}", "--audio-weight", "0.5"], "needs a --text to mix with"),
        (
            ["--mode", "variation", "--audio", "{wav}", "--text", "a", "--text", "b"],
            "error: --mode variation takes at most one --text, got 2",
        ),
    ],
)
def test_cli_variation_errors(tiny_ldm_checkpoint, tmp_path, capsys, args, message):
    wav = write_tone(tmp_path / "in.wav", 0.9)
    args = [a.replace("{wav}", str(wav)) for a in args]
    assert cli(tiny_ldm_checkpoint, tmp_path / "o", *args) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
