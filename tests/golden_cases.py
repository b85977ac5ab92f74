"""Golden outputs: what generate.py and the pipeline make from the tiny test checkpoints, recorded once
(``python -m tests.golden_cases record``) and matched by tests/test_golden.py after every change that should
not change behaviour.

Cases: a tiny LDM and its tiny consistency-distilled student (tests/ldm_fixtures.py), each through
generate.py for text (two prompts, candidates, a negative prompt), style transfer and inpainting; and a
tiny checkpoint in the original AudioLDM layout (networks built by the original code,
tests/reference/), converted by convert.py to ours and generated from, and generated from directly.

Recorded per case: the 16-bit samples of every wav generate.py writes and the CLAP scores in its
generate.json; per checkpoint, a summary of its weights (so a changed fixture is told apart from a
changed generator); and the pipeline's float32 latents and waveforms for the text case. Re-record only
when a change of the outputs is intended, and say so in the commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

GOLDEN = Path(__file__).resolve().parent / "golden" / "outputs.pt"
SECONDS = "0.32"
PROMPTS = ["a low tone", "a high beep"]
LDM_SAMPLING = ["--steps", "5", "--seed", "7"]
LCM_SAMPLING = ["--sampler", "lcm", "--steps", "4", "--guidance", "3", "--seed", "7"]
EDITS = {
    "transfer": ["--mode", "transfer", "--text", "a high beep", "--strength", "0.6"],
    "inpaint": ["--mode", "inpaint", "--text", "a low tone", "--span", "0.1-0.2"],
}


def generate_cases(ldm: Path, lcm: Path, vocoder: Path, source: Path) -> dict[str, list[str]]:
    """generate.py arguments (less --out) of each generator case. The tiny checkpoints' own HiFi-GAN is silent
    (1e-10 at random weights), so they speak through ``vocoder`` (a tiny mel-anchored iSTFT vocoder, whose
    untrained output is the mel's energy)."""
    text = ["--text", PROMPTS[0], "--text", PROMPTS[1], "--duration", SECONDS]
    ldm_args, lcm_args = (
        ["--ckpt", str(ldm), "--vocoder", str(vocoder)],
        ["--ckpt", str(lcm), "--vocoder", str(vocoder)],
    )
    cases = {
        "ldm_text": [*ldm_args, *text, "--candidates", "2", "--negative", "hiss", "--sampler", "ddim", *LDM_SAMPLING],
        "lcm_text": [*lcm_args, *text, *LCM_SAMPLING],
    }
    for mode, args in EDITS.items():
        cases[f"ldm_{mode}"] = [*ldm_args, "--audio", str(source), *args, "--sampler", "dpmsolver++", *LDM_SAMPLING]
        cases[f"lcm_{mode}"] = [*lcm_args, "--audio", str(source), *args, *LCM_SAMPLING]
    return cases


def original_cases(original: Path, converted: Path, tokenizer: Path) -> dict[str, list[str]]:
    text = ["--text", PROMPTS[0], "--duration", SECONDS, *LDM_SAMPLING]
    return {
        "original_converted_text": ["--ckpt", str(converted), *text],
        "original_direct_text": ["--ckpt", str(original), "--tokenizer", str(tokenizer), "--head-channels", "8", *text],
    }


def run_generate(args: list[str], out: Path) -> dict[str, torch.Tensor]:
    """generate.py's outputs in ``out``: {"<file>.wav": int16 samples, "clap_scores": [...] when ranked}."""
    import generate

    assert generate.main([*args, "--out", str(out), "--device", "cpu"]) == 0, args
    result = {}
    for wav in sorted(out.glob("*.wav")):
        samples, rate = sf.read(str(wav), dtype="int16")
        assert rate == 16000
        result[wav.name] = torch.from_numpy(np.asarray(samples))
    rows = json.loads((out / "generate.json").read_text())["outputs"]
    scores = [r["clap_score"] for r in rows]
    if any(s is not None for s in scores):
        result["clap_scores"] = torch.tensor(scores, dtype=torch.float64)
    return result


def weights_summary(path: Path) -> torch.Tensor:
    """[sum, sum of |x|] of every floating tensor of a checkpoint file's state dict, in key order."""
    raw = torch.load(path, map_location="cpu", weights_only=False)
    state = raw["state_dict"]
    rows = [
        [float(v.double().sum()), float(v.double().abs().sum())]
        for _, v in sorted(state.items())
        if isinstance(v, torch.Tensor) and v.is_floating_point()
    ]
    return torch.tensor(rows, dtype=torch.float64)


def pipeline_outputs(ckpt: Path, vocoder: Path) -> dict[str, torch.Tensor]:
    """The pipeline's float32 latents and waveforms for the two prompts (ddim 5 steps, or lcm 4; seed 7)."""
    from audioldm.pipeline.text_to_audio import SamplingOptions, TextToAudio

    pipe = TextToAudio.from_checkpoint(str(ckpt), "cpu", vocoder_ckpt=str(vocoder))
    sampler = pipe.model.samplers[0]
    options = SamplingOptions(steps=4 if sampler == "lcm" else 5, sampler=sampler, seed=7, guidance=2.5)
    result = pipe.text_to_audio(PROMPTS, float(SECONDS), options)
    return {"latent": result.latent.clone(), "waveform": result.waveform.clone()}


def write_vocoder(folder: Path) -> Path:
    """The tiny mel-anchored iSTFT vocoder (configs/demo/vocoder.yaml at tiny size, random weights)."""
    from tests.ldm_fixtures import write_stage_checkpoint

    folder.mkdir(parents=True, exist_ok=True)
    return write_stage_checkpoint("vocoder", folder / "istft_vocoder.ckpt", seed=4)


def source_clip(folder: Path) -> Path:
    from tests.conftest import write_tone

    return write_tone(folder / "source.wav", 0.5, 16000, freq=330.0, seed=3)


def record(folder: Path) -> dict:
    """Every golden output, made with the checkpoints the test fixtures write (under ``folder``)."""
    import convert
    from tests.ldm_fixtures import write_lcm_checkpoint, write_ldm_checkpoint
    from tests.original_fixtures import write_original_checkpoint

    ldm = write_ldm_checkpoint(folder / "ldm")
    lcm = write_lcm_checkpoint(folder / "lcm", ldm)
    vocoder = write_vocoder(folder / "vocoder")
    original, tokenizer = write_original_checkpoint(folder / "original")
    converted = folder / "original" / "converted.ckpt"
    assert convert.main([str(original), str(converted), "--tokenizer", str(tokenizer), "--head-channels", "8"]) == 0
    cases = {**generate_cases(ldm, lcm, vocoder, source_clip(folder)), **original_cases(original, converted, tokenizer)}
    outputs = {name: run_generate(args, folder / "out" / name) for name, args in cases.items()}
    return {
        "generate": outputs,
        "weights": {
            "ldm": weights_summary(ldm),
            "lcm": weights_summary(lcm),
            "vocoder": weights_summary(vocoder),
            "original_converted": weights_summary(converted),
        },
        "pipeline": {"ldm": pipeline_outputs(ldm, vocoder), "lcm": pipeline_outputs(lcm, vocoder)},
    }


if __name__ == "__main__" and sys.argv[1:] == ["record"]:
    import os
    import tempfile

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    torch.set_flush_denormal(True)  # as tests/conftest.py
    with tempfile.TemporaryDirectory() as tmp:
        golden = record(Path(tmp))
    GOLDEN.parent.mkdir(exist_ok=True)
    torch.save(golden, GOLDEN)
    print(f"recorded {len(golden['generate'])} generate.py cases to {GOLDEN}")
