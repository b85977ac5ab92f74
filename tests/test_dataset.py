"""Decoding and the Dataset: odd files load, bad files are skipped, warned about once, counted."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audioldm.audio.io import AudioReadError, load_audio
from audioldm.audio.mel import MelConfig
from data.dataset import AudioClipDataset, ClipOptions, collate_clips
from data.manifest import ManifestEntry, ManifestError
from tests.conftest import write_tone


def make_odd_folder(root: Path) -> tuple[list[ManifestEntry], set[str]]:
    """Good files in unusual formats plus every kind of bad file. Returns entries and bad ids."""
    good = {
        "plain": write_tone(root / "plain.wav"),
        "stereo": write_tone(root / "stereo.wav", channels=2),
        "rate22k": write_tone(root / "rate22k.wav", sample_rate=22050),
        "rate8k": write_tone(root / "rate8k.wav", sample_rate=8000),
        "pcm24": write_tone(root / "pcm24.wav", subtype="PCM_24"),
        "flac": write_tone(root / "flac.flac", subtype="PCM_16"),
        "ogg": write_tone(root / "ogg.ogg", subtype="VORBIS"),
        "mp3": write_tone(root / "mp3.mp3", subtype="MPEG_LAYER_III"),
        "long": write_tone(root / "long.wav", seconds=7.0),
    }
    (root / "corrupt.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)
    sf.write(str(root / "empty.wav"), np.zeros((0, 1), dtype=np.float32), 16000)
    full = write_tone(root / "truncated_src.wav", seconds=2.0).read_bytes()
    (root / "truncated.wav").write_bytes(full[: len(full) // 3])
    (root / "notaudio.wav").write_text("this is a text file")
    bad = {
        "corrupt": root / "corrupt.wav",
        "empty": root / "empty.wav",
        "truncated": root / "truncated.wav",
        "notaudio": root / "notaudio.wav",
        "missing": root / "missing.wav",
    }
    entries = [ManifestEntry(id=k, path=str(p), captions=[k]) for k, p in {**good, **bad}.items()]
    return entries, set(bad)


@pytest.mark.parametrize(
    "name, reason",
    [
        ("corrupt", "cannot open"),
        ("empty", "empty"),
        ("truncated", "truncated"),
        ("notaudio", "cannot open"),
        ("missing", "does not exist"),
    ],
)
def test_bad_files_raise_named_errors(tmp_path, name, reason):
    make_odd_folder(tmp_path)
    with pytest.raises(AudioReadError) as err:
        load_audio(tmp_path / f"{name}.wav")
    assert str(tmp_path / f"{name}.wav") in str(err.value) and reason in str(err.value)


def test_odd_formats_decode_to_mono_16k(tmp_path):
    make_odd_folder(tmp_path)
    for name in ("stereo.wav", "rate22k.wav", "rate8k.wav", "pcm24.wav", "flac.flac", "ogg.ogg", "mp3.mp3"):
        wave = load_audio(tmp_path / name, 16000)
        assert wave.dim() == 1 and wave.dtype == torch.float32
        assert abs(wave.shape[0] - 16000) <= 1, name
    stereo = load_audio(tmp_path / "stereo.wav")
    plain = load_audio(tmp_path / "plain.wav")
    torch.testing.assert_close(stereo, plain * 0.75, atol=1e-3, rtol=0)  # channels 0.5x and 1x


def test_dataset_skips_and_counts_bad_clips(tmp_path, caplog):
    entries, bad = make_odd_folder(tmp_path)
    dataset = AudioClipDataset(entries, MelConfig(), ClipOptions(segment_seconds=1.28, random_crop=True))
    with caplog.at_level(logging.WARNING, logger="data.dataset"):
        items = [dataset[i] for i in range(len(dataset))] + [dataset[i] for i in range(len(dataset))]
    assert sum(item["skipped"] for item in items) == 2 * len(bad)
    assert all(item["id"] not in bad for item in items)
    for item in items:
        assert item["waveform"].shape == (20480,)
        assert item["log_mel"].shape == (1, 128, 64)
        assert torch.isfinite(item["log_mel"]).all()
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == len(bad)  # one warning per bad file, not per visit
    for name in bad:
        assert sum(f"{name}.wav" in w for w in warned) == 1
    batch = collate_clips(items[:6])
    assert batch["waveform"].shape == (6, 20480) and batch["log_mel"].shape == (6, 1, 128, 64)
    assert int(batch["skipped"]) == sum(i["skipped"] for i in items[:6])


def test_normalised_padded_and_cropped(tmp_path):
    short = write_tone(tmp_path / "short.wav", seconds=0.5)
    long = write_tone(tmp_path / "long.wav", seconds=6.0)
    entries = [ManifestEntry(id="s", path=str(short)), ManifestEntry(id="l", path=str(long))]
    ds = AudioClipDataset(entries, MelConfig(), ClipOptions(segment_seconds=2.56, random_crop=False))
    s, lg = ds[0], ds[1]
    assert s["waveform"].shape == lg["waveform"].shape == (40960,)
    assert torch.all(s["waveform"][8000:] == 0)  # padded with silence after 0.5 s
    assert abs(float(s["waveform"][:8000].abs().max()) - 0.5) < 1e-4
    assert abs(float(lg["waveform"].mean())) < 1e-4


def test_random_crop_avoids_silence(tmp_path):
    rate = 16000
    wave = np.zeros(rate * 20, dtype=np.float32)
    wave[rate * 15 : rate * 17] = 0.3 * np.sin(np.arange(rate * 2) * 0.1)  # 2 s of sound in 20 s
    sf.write(str(tmp_path / "sparse.wav"), wave, rate)
    ds = AudioClipDataset(
        [ManifestEntry(id="x", path=str(tmp_path / "sparse.wav"))],
        MelConfig(),
        ClipOptions(segment_seconds=2.56, random_crop=True),
    )
    torch.manual_seed(0)
    loud = sum(float(ds[0]["waveform"].abs().max()) > 0.1 for _ in range(20))
    assert loud >= 15  # a single random crop would hit sound ~25% of the time


def test_all_bad_fails_clearly(tmp_path):
    entries = [ManifestEntry(id=f"m{i}", path=str(tmp_path / f"m{i}.wav")) for i in range(3)]
    ds = AudioClipDataset(entries, MelConfig(), ClipOptions(segment_seconds=1.0))
    with pytest.raises(ManifestError, match="could not be read"):  # train.py prints it as one line
        ds[0]


def test_mel_cache_gives_identical_items(tmp_path):
    entries, _ = make_odd_folder(tmp_path / "audio")
    entries = [e for e in entries if e.id in ("plain", "stereo", "long")]
    opts = dict(segment_seconds=1.28, random_crop=False)
    plain = AudioClipDataset(entries, MelConfig(), ClipOptions(**opts))
    cached = AudioClipDataset(entries, MelConfig(), ClipOptions(**opts, cache_dir=str(tmp_path / "cache")))
    first = [cached[i] for i in range(3)]
    assert len(list((tmp_path / "cache").rglob("*.pt"))) == 3
    again = [cached[i] for i in range(3)]
    for a, b, c in zip((plain[i] for i in range(3)), first, again):
        torch.testing.assert_close(a["log_mel"], b["log_mel"], rtol=0, atol=0)
        torch.testing.assert_close(a["waveform"], c["waveform"], rtol=0, atol=0)
    # a different segment length is a different cache entry, never a stale read
    other = AudioClipDataset(
        entries, MelConfig(), ClipOptions(segment_seconds=2.56, random_crop=False, cache_dir=str(tmp_path / "cache"))
    )
    assert other[0]["log_mel"].shape == (1, 256, 64)
