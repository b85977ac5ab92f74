"""The demo dataset builder: caption rules, cutting/looping, building from unpacked trees.

No network, no apt and no built dataset: packages are faked as small trees of
synthesized audio under ``<out>/.unpacked/<package>/``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from data.demo import build as demo_build
from data.demo import debian
from data.demo.clips import ClipSpec, RecordingIndex, loop_to_length, make_clips, split_long
from data.demo.rules import RULES_CSV, CaptionRule, RulesError, load_rules, match_rule, rule_packages
from data.manifest import read_manifest

SR = 16000
SPEC = ClipSpec()


def _noise_burst(seconds: float, sr: int = SR, amplitude: float = 0.5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (amplitude * rng.uniform(-1, 1, int(seconds * sr))).astype(np.float32)


def _write_rules(path: Path, rows: list[str]) -> Path:
    path.write_text("package,pattern,class,captions,max_files,gap\n" + "\n".join(rows) + "\n")
    return path


# --- rules ---------------------------------------------------------------------------


def test_rules_first_match_wins_and_unmatched_files_are_ignored(tmp_path):
    rules = load_rules(
        _write_rules(
            tmp_path / "rules.csv",
            [
                "# a comment row,,,,,",
                "pkg-a,*/misc/dog_small*.wav,puppy,a puppy yelps|a small dog yelping,,0.5",
                "pkg-a,*/misc/dog*.wav,dog_bark,a dog barks|barking of a dog|a dog barking,2,",
                "pkg-b,*/birds/*.ogg,birdsong,birds sing|birdsong outdoors,,",
            ],
        )
    )
    assert len(rules) == 3
    assert rule_packages(rules) == ["pkg-a", "pkg-b"]
    assert match_rule(rules, "pkg-a", "usr/share/x/misc/dog_small1.wav").label == "puppy"
    dog = match_rule(rules, "pkg-a", "usr/share/x/misc/dog2.wav")
    assert dog.label == "dog_bark" and dog.captions == ("a dog barks", "barking of a dog", "a dog barking")
    assert dog.max_files == 2 and dog.gap is None
    assert match_rule(rules, "pkg-a", "usr/share/x/misc/cat.wav") is None
    assert match_rule(rules, "pkg-b", "usr/share/x/misc/dog2.wav") is None  # wrong package
    assert match_rule(rules, "pkg-b", "a/b/birds/robin.ogg").label == "birdsong"  # * crosses '/'


@pytest.mark.parametrize(
    "row",
    [
        "pkg,*.wav,dog,only one caption,,",
        "pkg,*.wav,,a|b,,",
        "pkg,*.wav,dog,a|b,many,",
    ],
)
def test_malformed_rules_are_rejected(tmp_path, row):
    with pytest.raises(RulesError):
        load_rules(_write_rules(tmp_path / "rules.csv", [row]))


def test_shipped_rules_table_loads_and_matches_known_paths():
    rules = load_rules(RULES_CSV)
    assert len({r.label for r in rules}) >= 20
    assert all(2 <= len(r.captions) <= 3 for r in rules)
    scorched = "usr/share/games/scorched3d/data/globalmods/none/data/wav/misc/"
    chirp = match_rule(rules, "scorched3d-data", scorched + "birdchirp3.wav")
    assert chirp.captions[0] == "a small bird chirps"
    assert match_rule(rules, "scorched3d-data", scorched + "birds1.wav").label == "birdsong"
    assert match_rule(rules, "scorched3d-data", scorched + "camera.wav") is None
    pizz = match_rule(rules, "lmms-common", "usr/share/lmms/samples/instruments/violin_pizzicato01.ogg")
    assert pizz.label == "bowed_strings" and "pizzicato" in " ".join(pizz.captions)


# --- cutting and looping ---------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0.03, 0.4, 1.0, 2.6, 4.9, 5.0, 7.0, 10.0, 10.5, 14.5, 38.0, 61.0, 200.0])
def test_clips_last_5_to_10_seconds(seconds):
    clips = make_clips(torch.from_numpy(_noise_burst(seconds)), SPEC)
    assert 1 <= len(clips) <= SPEC.max_clips
    for clip in clips:
        assert 5 * SR <= clip.numel() <= 10 * SR
        assert clip.abs().max() <= SPEC.max_peak + 1e-6


def test_short_sound_is_looped_with_gaps():
    wave = torch.ones(SR)  # 1 s
    looped = loop_to_length(wave, 5 * SR, 10 * SR, gap=SR // 4)
    assert looped.numel() == 5 * SR + 4 * (SR // 4)  # 5 repeats, 4 gaps
    assert looped[SR : SR + SR // 4].abs().sum() == 0


def test_long_recording_is_cut_into_non_overlapping_clips():
    wave = torch.arange(38 * SR, dtype=torch.float32)
    clips = split_long(wave, 5 * SR, 10 * SR, max_clips=6)
    assert [c.numel() for c in clips] == [int(9.5 * SR)] * 4
    assert all(a[-1] < b[0] for a, b in zip(clips, clips[1:]))
    capped = split_long(torch.arange(200 * SR, dtype=torch.float32), 5 * SR, 10 * SR, max_clips=6)
    assert len(capped) == 6 and all(c.numel() == 10 * SR for c in capped)
    assert all(a[-1] < b[0] for a, b in zip(capped, capped[1:]))


def test_nearly_silent_recording_gives_no_clips():
    assert make_clips(torch.zeros(3 * SR), SPEC) == []
    assert make_clips(torch.from_numpy(_noise_burst(3, amplitude=1e-3)), SPEC) == []


def test_recording_index_spots_reencoded_copies():
    index = RecordingIndex()
    wave = torch.from_numpy(_noise_burst(3)) * torch.linspace(0, 1, 3 * SR)
    assert not index.seen_before((3 * SR, SR), wave)
    assert index.seen_before((3 * SR, SR), wave + 1e-3 * torch.randn_like(wave))
    assert not index.seen_before((3 * SR, SR), torch.from_numpy(_noise_burst(3, seed=1)))


# --- building from unpacked trees ------------------------------------------------------


def _fake_tree(out: Path) -> None:
    """Two fake packages laid out like ``<out>/.unpacked/<package>/...`` (kept if present)."""
    if (out / ".unpacked").exists():
        return
    a = out / ".unpacked" / "pkg-a" / "usr/share/sounds"
    b = out / ".unpacked" / "pkg-b" / "usr/share/sounds"
    for folder in (a, b):
        folder.mkdir(parents=True)
    sf.write(a / "dog1.wav", _noise_burst(0.8, 22050), 22050)
    sf.write(a / "dog2.wav", _noise_burst(1.2, 22050, seed=2), 22050)
    sf.write(a / "dog3.wav", _noise_burst(0.8, 22050), 22050)  # same bytes as dog1
    sf.write(a / "rain.ogg", np.stack([_noise_burst(23, 44100)] * 2, axis=1), 44100)
    sf.write(a / "silent.wav", np.zeros(SR, np.float32), SR)
    (a / "broken.wav").write_bytes(b"RIFF not really a wave file")
    sf.write(a / "cat.wav", _noise_burst(1), SR)  # no rule: ignored
    sf.write(b / "cheer.flac", _noise_burst(7, seed=3), SR)
    doc = out / ".unpacked" / "pkg-b" / "usr/share/doc/pkg-b"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("Files: *\nLicense: CC0-1.0\n")


@pytest.fixture
def fake_build(tmp_path):
    out = tmp_path / "demo"
    _fake_tree(out)
    rules = _write_rules(
        tmp_path / "rules.csv",
        [
            "pkg-a,*/dog*.wav,dog_bark,a dog barks|barking of a dog,,0.3",
            "pkg-a,*/rain.ogg,rain,rain falls|the sound of rain,,",
            "pkg-a,*/silent.wav,rain,rain falls|the sound of rain,,",
            "pkg-a,*/broken.wav,rain,rain falls|the sound of rain,,",
            "pkg-b,*/cheer.flac,crowd,a crowd cheers|people cheering,,",
        ],
    )
    calls: list[str] = []

    def fake_fetch(package: str) -> str:  # like AptFetcher: leaves the unpacked tree behind
        calls.append(package)
        _fake_tree(out)
        return "1.0-1"

    def run(force: bool = False):
        return demo_build.build(out, rules, force=force, val_packages=("pkg-b",), fetch=fake_fetch)

    return out, rules, calls, run


def test_build_from_fake_tree_writes_a_valid_manifest(fake_build):
    out, _, _, run = fake_build
    report = run()
    entries = read_manifest(out / "manifest.jsonl")
    assert not (out / ".unpacked").exists()  # removed after a complete build; the .debs stay cached
    assert len(entries) == len(report.entries) == 2 + 3 + 1  # 2 dogs looped, rain cut in 3, cheer
    assert {e.labels[0] for e in entries} == {"dog_bark", "rain", "crowd"}
    assert {e.split for e in entries if e.labels == ["crowd"]} == {"val"}
    assert {e.split for e in entries if e.labels != ["crowd"]} == {"train"}
    for entry in entries:
        info = sf.info(entry.path)
        assert info.samplerate == SR and info.channels == 1
        assert 5.0 <= entry.duration <= 10.0 and abs(info.duration - entry.duration) < 1e-3
        assert entry.source.startswith("debian:pkg-") and len(entry.captions) == 2
        assert Path(entry.path).parent.name == entry.labels[0]
    assert report.duplicates == 1
    assert len(report.unreadable) == 1 and report.unreadable[0].endswith("broken.wav")
    assert len(report.silent) == 1 and report.silent[0].endswith("silent.wav")
    assert report.unavailable == {}
    credits = (out / "CREDITS.txt").read_text()
    assert "pkg-b 1.0-1: 1 clips; copyright: licenses/pkg-b.copyright" in credits
    assert "pkg-a 1.0-1: 5 clips; copyright file not found" in credits
    assert (out / "licenses" / "pkg-b.copyright").is_file()


def test_second_build_is_a_no_op_until_forced_or_rules_change(fake_build):
    out, rules, calls, run = fake_build
    run()
    calls.clear()
    stamp_time = (out / demo_build.STAMP_NAME).stat().st_mtime_ns
    again = run()
    assert again.up_to_date and calls == []
    assert (out / demo_build.STAMP_NAME).stat().st_mtime_ns == stamp_time
    forced = run(force=True)
    assert not forced.up_to_date and len(forced.entries) == 6
    rules.write_text(rules.read_text().replace("a dog barks", "a dog woofs"))
    changed = run()
    assert not changed.up_to_date
    assert "a dog woofs" in read_manifest(out / "manifest.jsonl")[0].captions


def test_unavailable_package_is_reported_and_retried_next_run(fake_build):
    out, rules, calls, run = fake_build
    rules.write_text(rules.read_text() + "pkg-c,*/anything.wav,crowd,a crowd cheers|people cheering,,\n")
    missing = {"pkg-c"}

    def flaky_fetch(package: str) -> str:
        calls.append(package)
        if package in missing:
            raise debian.PackageUnavailable(f"{package}: Unable to locate package")
        return "1.0-1"

    def build():
        return demo_build.build(out, rules, val_packages=("pkg-b",), fetch=flaky_fetch)

    first = build()
    assert set(first.unavailable) == {"pkg-c"} and len(first.entries) == 6
    assert "unavailable packages (run again to retry): pkg-c" in demo_build.format_summary(first, out, 1.0)
    missing.clear()
    assert not build().up_to_date  # retried, since the first build was incomplete
    assert build().up_to_date


def test_summary_lists_classes_and_splits(fake_build):
    out, _, _, run = fake_build
    text = demo_build.format_summary(run(), out, 1.0)
    assert "dog_bark" in text and "total" in text
    assert "already built" in demo_build.format_summary(run(), out, 0.1)


# --- apt step (faked) --------------------------------------------------------------------


def test_cached_deb_is_not_downloaded_again(tmp_path, monkeypatch):
    commands: list[list[str]] = []

    def fake_run(cmd, cwd=None):
        commands.append(cmd)
        if cmd[0] == "dpkg":
            Path(cmd[3], "usr").mkdir(parents=True, exist_ok=True)
        return subprocess.CompletedProcess(cmd, 0, stdout="2.0-1\n", stderr="")

    monkeypatch.setattr(debian, "_run", fake_run)
    fetcher = debian.AptFetcher(tmp_path)
    fetcher.cache_dir.mkdir(parents=True)
    (fetcher.cache_dir / "pkg_2.0-1_all.deb").write_bytes(b"x")
    assert fetcher("pkg") == "2.0-1"
    assert fetcher("pkg") == "2.0-1"
    assert not any(c[0] == "apt-get" for c in commands)
    assert sum(c[0] == "dpkg" for c in commands) == 1  # unpacked once, then reused
    assert fetcher.downloaded_bytes == 0


def test_failed_download_updates_lists_once_then_reports_unavailable(tmp_path, monkeypatch):
    commands: list[list[str]] = []

    def fake_run(cmd, cwd=None):
        commands.append(cmd)
        return subprocess.CompletedProcess(cmd, 100, stdout="", stderr="E: Unable to locate package nope")

    monkeypatch.setattr(debian, "_run", fake_run)
    fetcher = debian.AptFetcher(tmp_path)
    with pytest.raises(debian.PackageUnavailable, match="Unable to locate"):
        fetcher("nope")
    with pytest.raises(debian.PackageUnavailable):
        fetcher("nope2")
    assert [c[1] for c in commands] == ["download", "update", "download", "download"]


def test_caption_rule_is_hashable_for_grouping():
    rule = CaptionRule("p", "*.wav", "x", ("a", "b"))
    assert {rule: 1}[CaptionRule("p", "*.wav", "x", ("a", "b"))] == 1
