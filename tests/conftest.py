"""Shared fixtures: tiny audio files and manifests made on the spot (no downloads, no demo data)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

# Tiny random networks produce denormal floats, which make CPU arithmetic 10-15x slower.
torch.set_flush_denormal(True)


def write_tone(
    path: Path,
    seconds: float = 1.0,
    sample_rate: int = 16000,
    channels: int = 1,
    subtype: str = "PCM_16",
    freq: float = 440.0,
    seed: int = 0,
) -> Path:
    """A sine tone plus a little noise, written with soundfile."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    mono = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
    data = np.stack([mono * (c + 1) / channels for c in range(channels)], axis=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data.astype(np.float32), sample_rate, subtype=subtype)
    return path


def write_manifest_lines(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def tone_dataset(tmp_path: Path) -> Path:
    """24 readable clips of 3 s at mixed rates (every 6th in 'val') and one corrupt train clip."""
    rows = []
    for i in range(24):
        rate = (16000, 22050, 44100)[i % 3]
        write_tone(tmp_path / "audio" / f"c{i}.wav", 3.0, rate, freq=200 + 50 * i, seed=i)
        rows.append(
            {
                "id": f"c{i}",
                "path": f"audio/c{i}.wav",
                "captions": [f"tone {i}", f"beep {i}"],
                "split": "val" if i % 6 == 0 else "train",
            }
        )
    (tmp_path / "audio" / "bad.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
    rows.append({"id": "bad", "path": "audio/bad.wav", "captions": ["broken"], "split": "train"})
    return write_manifest_lines(tmp_path / "manifest.jsonl", rows)


@pytest.fixture(scope="session")
def tiny_ldm_checkpoint(tmp_path_factory) -> Path:
    """An untrained tiny LDM checkpoint with its frozen parts (written once per session)."""
    from tests.ldm_fixtures import write_ldm_checkpoint

    return write_ldm_checkpoint(tmp_path_factory.mktemp("tiny_ldm"))


@pytest.fixture(scope="session")
def tiny_lcm_checkpoint(tiny_ldm_checkpoint, tmp_path_factory) -> Path:
    """An untrained consistency-distilled student (stage lcm) of ``tiny_ldm_checkpoint``."""
    from tests.ldm_fixtures import write_lcm_checkpoint

    return write_lcm_checkpoint(tmp_path_factory.mktemp("lcm"), tiny_ldm_checkpoint)


@pytest.fixture(scope="session")
def roberta_tokenizer_dir(tmp_path_factory) -> Path:
    """A tiny RoBERTa tokenizer folder (tests/tokenizer_fixtures.py), written once per session."""
    from tests.tokenizer_fixtures import write_tiny_roberta_tokenizer

    return write_tiny_roberta_tokenizer(tmp_path_factory.mktemp("roberta_tokenizer"))


@pytest.fixture(scope="session")
def original_audioldm_reference(tmp_path_factory) -> dict:
    """Tiny original AudioLDM networks (UNet, its EMA, VAE, HiFi-GAN) built with the original code in a
    subprocess (tests/reference/original_audioldm_probe.py): their kwargs, state dicts, inputs and outputs."""
    from tests.original_fixtures import run_original_probe

    try:
        return run_original_probe(tmp_path_factory.mktemp("original_audioldm"))
    except FileNotFoundError as e:
        pytest.fail(str(e))


@pytest.fixture(scope="session")
def laion_reference(roberta_tokenizer_dir):
    """A tiny LAION-CLAP built with the original laion_clap code (tests/reference/laion_clap_reference.py)."""
    pytest.importorskip("laion_clap")
    from tests.reference.laion_clap_reference import build_laion_reference

    return build_laion_reference(roberta_tokenizer_dir)


@pytest.fixture(scope="session")
def roberta_ldm_checkpoint(tmp_path_factory, roberta_tokenizer_dir) -> Path:
    """A tiny random ldm checkpoint whose CLAP uses a RoBERTa tokenizer (as official CLAPs do)."""
    from tests.ldm_fixtures import write_ldm_checkpoint

    folder = tmp_path_factory.mktemp("roberta_ldm")
    return write_ldm_checkpoint(folder, clap_extra=(f"model.tokenizer_path={roberta_tokenizer_dir}",))


@pytest.fixture(scope="session")
def diffusers_folder(roberta_ldm_checkpoint, tmp_path_factory) -> Path:
    """``roberta_ldm_checkpoint`` exported by convert.py as a diffusers AudioLDM folder."""
    import convert

    out = tmp_path_factory.mktemp("export") / "audioldm-diffusers"
    assert convert.main([str(roberta_ldm_checkpoint), str(out), "--to", "diffusers"]) == 0
    return out


@pytest.fixture(scope="session")
def official_weights_dir(tmp_path_factory) -> Path:
    """Randomly initialised VGGish and PANNs CNN14 files with the official names and key layouts
    (torchvggish's state dict; PANNs' {"model": state dict}), written once per session."""
    torchvggish = pytest.importorskip("torchvggish")
    from evaluation.backbones.panns import PANN_FILE, build_cnn14
    from evaluation.backbones.vggish import VGGISH_FILE

    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    torch.save(torchvggish.torchvggish._vgg(postprocess=False).state_dict(), folder / VGGISH_FILE)
    torch.save({"model": build_cnn14().state_dict(), "iteration": 0}, folder / PANN_FILE)
    return folder


@pytest.fixture(autouse=True)
def _end_to_end_runs_are_marked_slow(request, monkeypatch):
    """A test that trains (``Trainer.fit``) or generates (the pipeline's sampling loop) is an end-to-end run and
    must carry the ``slow`` mark, so ``pytest -m "not slow"`` stays a fast subset (README, "Tests")."""
    if request.node.get_closest_marker("slow"):
        yield
        return
    import pytorch_lightning as pl

    from audioldm.pipeline.text_to_audio import TextToAudio

    runs = []
    for owner, name in ((pl.Trainer, "fit"), (TextToAudio, "_generate")):
        original = getattr(owner, name)

        def recorded(*args, _original=original, _name=f"{owner.__name__}.{name}", **kwargs):
            runs.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(owner, name, recorded)
    yield
    if runs:
        pytest.fail(f"{request.node.nodeid} runs {sorted(set(runs))} but has no slow mark", pytrace=False)
