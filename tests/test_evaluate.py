"""evaluate.py and its parts: clip sets and pairing, audio as audioldm_eval reads it, the AudioCaps
preset, generation with resume, reports, one-line errors, and the LDM's validation metrics."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import evaluate
import train
from evaluation.clip_sets import clips_from_folder, load_eval_audio, pair
from evaluation.protocol import protocol_clips
from tests.conftest import write_manifest_lines, write_tone
from tests.ldm_fixtures import REPO, ldm_overrides


def tone_folder(folder: Path, names: list[str], freq: float = 300.0, rate: int = 16000) -> Path:
    for i, name in enumerate(names):
        write_tone(folder / f"{name}.wav", 1.0, rate, freq=freq + 40 * i, seed=i)
    return folder


def test_clip_sets_pair_by_name(tmp_path):
    gen = tone_folder(tmp_path / "gen", ["a", "b", "c"])
    ref = tone_folder(tmp_path / "ref", ["b", "c", "d", "e"])
    (gen / "notes.txt").write_text("not audio")
    pairing = pair(clips_from_folder(gen), clips_from_folder(ref))
    assert pairing.paired == ["b", "c"] and pairing.generated_only == ["a"] and pairing.reference_only == ["d", "e"]
    both = clips_from_folder(gen, tone_folder(tmp_path / "more" / "sub", ["z"]))
    assert [c.key for c in both] == ["a", "b", "c", "z"]  # several folders, subfolders included
    write_tone(gen / "a.flac", 1.0)
    with pytest.raises(ValueError, match="another file is also named 'a'"):
        clips_from_folder(gen)


def test_audio_is_read_as_audioldm_eval_reads_it(tmp_path):
    t = np.arange(8000) / 8000  # 1 s at 8 kHz, stereo with different channels, a DC offset
    left, right = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2, 0.1 * np.sin(2 * np.pi * 880 * t)
    sf.write(tmp_path / "s.wav", np.stack([left, right], 1).astype(np.float32), 8000, subtype="FLOAT")
    wave = load_eval_audio(str(tmp_path / "s.wav"))
    assert wave.shape == (32000,)  # 1 s at 16 kHz, zero-padded to 2 s
    assert abs(float(wave[:16000].mean())) < 1e-3  # channel 0, its mean removed
    assert float(wave[16000:].abs().max()) == 0.0
    import torchaudio.functional as AF

    expected = AF.resample(torch.tensor(left - left.mean(), dtype=torch.float32), 8000, 16000)
    torch.testing.assert_close(wave[:16000], expected, rtol=0, atol=1e-5)


def test_audiocaps_preset_takes_test_clips_and_first_captions(tmp_path):
    rows = [
        {
            "id": f"c{i}",
            "path": f"c{i}.wav",
            "captions": [f"first {i}", f"second {i}"],
            "split": "test" if i < 3 else "train",
        }
        for i in range(5)
    ]
    manifest = write_manifest_lines(tmp_path / "m.jsonl", rows)
    clips, seconds, notes = protocol_clips(str(manifest), "audiocaps")
    assert [c.key for c in clips] == ["c0", "c1", "c2"] and clips[0].caption == "first 0" and seconds == 10.0
    assert "3 test clips, not the paper's 964" in notes[0]
    with pytest.raises(ValueError, match="unknown protocol"):
        protocol_clips(str(manifest), "clotho")


def test_clap_backbone_on_folders(tiny_ldm_checkpoint, tmp_path, capsys):
    gen = tone_folder(tmp_path / "gen", ["a", "b", "c", "x"])
    write_manifest_lines(
        gen / "generated.jsonl", [{"id": k, "path": f"{k}.wav", "captions": [f"tone {k}"]} for k in "abcx"]
    )
    ref = tone_folder(tmp_path / "ref", ["a", "b", "c", "d"], freq=500.0)
    clap = tiny_ldm_checkpoint.parent / "clap.ckpt"
    out = tmp_path / "eval"
    assert (
        evaluate.main(
            [
                "--generated",
                str(gen),
                "--reference",
                str(ref),
                "--backbone",
                "clap",
                "--clap-ckpt",
                str(clap),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| FD (CLAP) ↓ | CLAP score ↑ |" in printed and "4 generated, 4 reference clips, 3 paired by name" in printed
    results = json.loads((out / "metrics.json").read_text())
    assert results["FD_clap"] > 0 and -1 <= results["CLAP_score"] <= 1 and results["pairs"] == 3
    assert any("not with papers" in n for n in results["notes"])
    assert any("1 generated and 1 reference clips have no partner" in n for n in results["notes"])
    events = EventAccumulator(str(out / "tb")).Reload()
    assert {"eval/FD_clap", "eval/CLAP_score"} <= set(events.Tags()["scalars"])
    # the same set against itself: FD about 0
    assert (
        evaluate.main(
            [
                "--generated",
                str(ref),
                "--reference",
                str(ref),
                "--backbone",
                "clap",
                "--clap-ckpt",
                str(clap),
                "--out",
                str(tmp_path / "self"),
            ]
        )
        == 0
    )
    assert abs(json.loads((tmp_path / "self" / "metrics.json").read_text())["FD_clap"]) < 1e-6


@pytest.mark.slow
def test_generate_then_score_resumes(tiny_ldm_checkpoint, tmp_path, capsys):
    ref = tone_folder(tmp_path / "ref", ["k0", "k1", "k2"])
    manifest = write_manifest_lines(
        tmp_path / "test.jsonl",
        [
            {"id": f"k{i}", "path": str(ref / f"k{i}.wav"), "captions": [f"a tone number {i}"], "split": "test"}
            for i in range(3)
        ],
    )
    out = tmp_path / "eval"
    args = [
        "--ckpt",
        str(tiny_ldm_checkpoint),
        "--manifest",
        str(manifest),
        "--preset",
        "audiocaps",
        "--backbone",
        "clap",
        "--out",
        str(out),
        "--steps",
        "2",
        "--sampler",
        "dpmsolver++",
        "--duration",
        "0.64",
        "--batch-size",
        "2",
    ]
    assert evaluate.main(args) == 0
    made = {p.name: p.stat().st_mtime_ns for p in (out / "generated").glob("*.wav")}
    assert set(made) == {"k0.wav", "k1.wav", "k2.wav"}
    results = json.loads((out / "metrics.json").read_text())
    assert results["pairs"] == 3 and "CLAP_score" in results
    assert any("the LDM's own CLAP" in n for n in results["notes"]) and any("964" in n for n in results["notes"])
    os.remove(out / "generated" / "k1.wav")
    assert evaluate.main(args) == 2  # its results are there: not replaced without --overwrite
    assert "holds earlier results (metrics.json, metrics.md, tb)" in capsys.readouterr().err
    assert evaluate.main([*args, "--overwrite"]) == 0  # resumes: only the missing clip is generated again
    again = {p.name: p.stat().st_mtime_ns for p in (out / "generated").glob("*.wav")}
    assert again["k0.wav"] == made["k0.wav"] and again["k2.wav"] == made["k2.wav"] and "k1.wav" in again
    assert "generated.jsonl" in os.listdir(out / "generated")


@pytest.mark.parametrize(
    "args,message",
    [
        (["--generated", "{gen}", "--reference", "{ref}"], "VGGish weights not found: vggish-10086976.pth"),
        (["--generated", "{gen}", "--reference", "{ref}", "--backbone", "clap"], "needs a CLAP checkpoint"),
        (["--generated", "{gen}"], "exactly one of --reference DIR or --manifest FILE"),
        (
            ["--generated", "{tmp}/nowhere", "--reference", "{ref}", "--backbone", "clap", "--clap-ckpt", "{clap}"],
            "folder not found",
        ),
    ],
)
def test_bad_input_is_one_line(tiny_ldm_checkpoint, tmp_path, capsys, args, message):
    gen, ref = tone_folder(tmp_path / "gen", ["a"]), tone_folder(tmp_path / "ref", ["a"])
    clap = tiny_ldm_checkpoint.parent / "clap.ckpt"
    args = [a.format(gen=gen, ref=ref, tmp=tmp_path, clap=clap) for a in args]
    assert evaluate.main([*args, "--weights-dir", str(tmp_path / "w"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


@pytest.mark.slow
def test_ldm_validation_logs_generation_metrics(tmp_path):
    from tests.ldm_fixtures import stage_checkpoints

    ckpts = stage_checkpoints(tmp_path / "stages")
    rows = []
    for i in range(8):
        write_tone(tmp_path / "audio" / f"c{i}.wav", 0.64, freq=200 + 90 * i, seed=i)
        rows.append(
            {"id": f"c{i}", "path": f"audio/c{i}.wav", "captions": [f"tone {i}"], "split": "val" if i < 3 else "train"}
        )
    manifest = write_manifest_lines(tmp_path / "m.jsonl", rows)
    out = tmp_path / "runs"
    assert (
        train.main(
            [
                "--config",
                str(REPO / "configs" / "demo" / "ldm.yaml"),
                *ldm_overrides(
                    ckpts,
                    manifest,
                    out,
                    "name=m",
                    "data.segment_seconds=0.64",
                    "data.batch_size=5",
                    "data.latent_cache_dir=null",
                    "trainer.max_steps=2",
                    "trainer.check_val_every_n_epoch=1",
                    "model.val_eval_clips=3",
                ),
            ]
        )
        == 0
    )
    tags = set(EventAccumulator(str(out / "m" / "version_0")).Reload().Tags()["scalars"])
    assert {"val/fd_clap", "val/clap_score", "val/loss"} <= tags


@pytest.mark.slow
def test_paper_backbones_on_folders(official_weights_dir, tiny_ldm_checkpoint, tmp_path, capsys):
    gen = tone_folder(tmp_path / "gen", ["a", "b", "c", "d"])  # fewer than IS's 10 splits: IS is left out
    ref = tone_folder(tmp_path / "ref", ["a", "b", "c", "e"], freq=700.0)
    out = tmp_path / "eval"
    assert (
        evaluate.main(
            [
                "--generated",
                str(gen),
                "--reference",
                str(ref),
                "--weights-dir",
                str(official_weights_dir),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    results = json.loads((out / "metrics.json").read_text())
    assert {"FAD", "FD", "KL_softmax", "KL_sigmoid"} <= set(results) and results["pairs"] == 3
    # audioldm_eval's KL adds 1e-6 to the predicted probabilities, so it can dip to -527e-6
    assert results["FAD"] > 0 and results["FD"] > 0 and results["KL_softmax"] > -1e-3
    assert "| FAD (VGGish) ↓ | FD (PANNs) ↓ | KL softmax ↓ | KL sigmoid ↓ |" in capsys.readouterr().out
    assert any(n.startswith("IS not computed: InceptionScore needs at least splits=10") for n in results["notes"])
    # a set against itself: FAD and FD about 0, KL 0
    assert (
        evaluate.main(
            [
                "--generated",
                str(ref),
                "--reference",
                str(ref),
                "--weights-dir",
                str(official_weights_dir),
                "--out",
                str(tmp_path / "self"),
            ]
        )
        == 0
    )
    same = json.loads((tmp_path / "self" / "metrics.json").read_text())
    assert abs(same["FAD"]) < 1e-6 * max(1.0, results["FAD"]) and abs(same["FD"]) < 1e-6 * max(1.0, results["FD"])
    assert abs(same["KL_softmax"]) < 1e-3 and abs(same["KL_sigmoid"]) < 1e-3
    many = tone_folder(tmp_path / "many", [f"m{i}" for i in range(12)])
    assert (
        evaluate.main(
            [
                "--generated",
                str(many),
                "--reference",
                str(ref),
                "--weights-dir",
                str(official_weights_dir),
                "--out",
                str(tmp_path / "many_eval"),
            ]
        )
        == 0
    )
    scored = json.loads((tmp_path / "many_eval" / "metrics.json").read_text())
    assert scored["IS"] >= 1.0 and scored["IS_std"] >= 0 and scored["pairs"] == 0 and "KL_softmax" not in scored


@pytest.mark.slow
def test_distilled_student_generates_and_scores(tiny_lcm_checkpoint, tmp_path):
    """evaluate.py --ckpt takes a consistency-distilled student (--sampler lcm, 4 steps by default), and its own
    CLAP is the backbone, as for an ldm checkpoint."""
    ref = tone_folder(tmp_path / "ref", ["k0", "k1"])
    manifest = write_manifest_lines(
        tmp_path / "test.jsonl",
        [
            {"id": f"k{i}", "path": str(ref / f"k{i}.wav"), "captions": [f"a tone number {i}"], "split": "test"}
            for i in range(2)
        ],
    )
    out = tmp_path / "eval"
    assert (
        evaluate.main(
            [
                "--ckpt",
                str(tiny_lcm_checkpoint),
                "--manifest",
                str(manifest),
                "--backbone",
                "clap",
                "--out",
                str(out),
                "--sampler",
                "lcm",
                "--guidance",
                "4",
                "--duration",
                "0.64",
            ]
        )
        == 0
    )
    assert {p.name for p in (out / "generated").glob("*.wav")} == {"k0.wav", "k1.wav"}
    assert json.loads((out / "metrics.json").read_text())["pairs"] == 2
