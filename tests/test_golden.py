"""Golden outputs (tests/golden_cases.py, recorded before the redesign of issue 24) matched after it: generate.py
on the tiny LDM and its tiny lcm student for text, style transfer and inpainting, and a tiny checkpoint in the
original AudioLDM layout converted and run, to float32 rounding (16-bit wavs within 8 steps of the 32768;
latents and float waveforms within 1e-4 of their scale)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import convert
from tests.golden_cases import (
    GOLDEN,
    generate_cases,
    original_cases,
    pipeline_outputs,
    run_generate,
    source_clip,
    weights_summary,
    write_vocoder,
)

pytestmark = pytest.mark.slow
WAV_STEPS = 8  # 16-bit steps (2.4e-4 of full scale): float32 rounding, e.g. of another thread count, moved 3
RTOL = 1e-4


@pytest.fixture(scope="module")
def golden() -> dict:
    assert GOLDEN.is_file(), f"{GOLDEN} is missing: record it with python -m tests.golden_cases record"
    return torch.load(GOLDEN, weights_only=True)


@pytest.fixture(scope="module")
def vocoder(tmp_path_factory) -> Path:
    return write_vocoder(tmp_path_factory.mktemp("golden_vocoder"))


@pytest.fixture(scope="module")
def original_pair(original_audioldm_reference, laion_reference, tmp_path_factory) -> tuple[Path, Path, Path]:
    """(original .ckpt, convert.py's checkpoint of it, its tokenizer folder)."""
    from tests.original_fixtures import original_state, save_original_checkpoint

    folder = tmp_path_factory.mktemp("golden_original")
    original = save_original_checkpoint(
        folder / "audioldm-tiny-full.ckpt", original_state(original_audioldm_reference, laion_reference.state)
    )
    converted = folder / "converted.ckpt"
    tokenizer = str(laion_reference.tokenizer_dir)
    assert convert.main([str(original), str(converted), "--tokenizer", tokenizer, "--head-channels", "8"]) == 0
    return original, converted, Path(tokenizer)


def assert_scaled_close(found: torch.Tensor, wanted: torch.Tensor, what: str) -> None:
    scale = float(wanted.abs().max())
    assert scale > 0, what
    torch.testing.assert_close(found, wanted, rtol=0, atol=RTOL * scale, msg=what)


def assert_outputs_match(found: dict, wanted: dict, case: str) -> None:
    assert sorted(found) == sorted(wanted), case
    for name, value in wanted.items():
        if name == "clap_scores":
            # generate.json rounds them to 4 decimals: float32 rounding may move one across a last digit
            torch.testing.assert_close(found[name], value, rtol=0, atol=1.5e-4, msg=f"{case}: CLAP scores")
            continue
        assert int(value.abs().max()) > 50, f"{case}/{name}: the golden clip is too quiet to compare"
        diff = (found[name].int() - value.int()).abs().max()
        assert int(diff) <= WAV_STEPS, f"{case}/{name}: {int(diff)} 16-bit steps from the golden output"


def test_checkpoint_fixtures_are_unchanged(golden, tiny_ldm_checkpoint, tiny_lcm_checkpoint, vocoder, original_pair):
    """The tiny checkpoints hold the weights the goldens were made from (else a fixture changed, not the code)."""
    for name, path in (
        ("ldm", tiny_ldm_checkpoint),
        ("lcm", tiny_lcm_checkpoint),
        ("vocoder", vocoder),
        ("original_converted", original_pair[1]),
    ):
        found, wanted = weights_summary(path), golden["weights"][name]
        assert found.shape == wanted.shape, name
        torch.testing.assert_close(found, wanted, rtol=1e-5, atol=1e-6, msg=name)


def test_generate_matches_golden_outputs(golden, tiny_ldm_checkpoint, tiny_lcm_checkpoint, vocoder, tmp_path):
    cases = generate_cases(tiny_ldm_checkpoint, tiny_lcm_checkpoint, vocoder, source_clip(tmp_path))
    assert set(cases) | {"original_converted_text", "original_direct_text"} == set(golden["generate"])
    for name, args in cases.items():
        assert_outputs_match(run_generate(args, tmp_path / name), golden["generate"][name], name)


def test_original_layout_converted_and_run_matches_golden(golden, original_pair, tmp_path):
    for name, args in original_cases(*original_pair).items():
        assert_outputs_match(run_generate(args, tmp_path / name), golden["generate"][name], name)


@pytest.mark.parametrize("name", ["ldm", "lcm"])
def test_pipeline_float_outputs_match_golden(golden, tiny_ldm_checkpoint, tiny_lcm_checkpoint, vocoder, name):
    found = pipeline_outputs(tiny_ldm_checkpoint if name == "ldm" else tiny_lcm_checkpoint, vocoder)
    for key, wanted in golden["pipeline"][name].items():
        assert_scaled_close(found[key], wanted, f"{name} {key}")
