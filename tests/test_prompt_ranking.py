"""The prompt-ranking check: hand-computed ranks, and the CLI on a folder written by generate.py."""

from __future__ import annotations

import json

import pytest
import torch

import generate
from evaluation import prompt_ranking
from tests.conftest import write_tone


def tone_clips(tmp_path, count: int, extra_caption: str | None = None) -> list[str]:
    """Two prompts in tmp_path/prompts.txt and ``count`` tones (low and high in turn) under tmp_path/real, listed
    in tmp_path/m.jsonl with their prompt (after ``extra_caption``, if given) as caption; returns the prompts."""
    prompts = ["a low tone", "a high beep"]
    (tmp_path / "prompts.txt").write_text("\n".join(prompts) + "\n")
    rows = []
    for i in range(count):
        write_tone(tmp_path / "real" / f"r{i}.wav", 0.7, freq=(200, 2000)[i % 2] + 10 * i, seed=i)
        captions = [extra_caption, prompts[i % 2]] if extra_caption else [prompts[i % 2]]
        rows.append(json.dumps({"id": f"r{i}", "path": f"real/r{i}.wav", "captions": captions}))
    (tmp_path / "m.jsonl").write_text("\n".join(rows) + "\n")
    return prompts


def test_ranks_on_a_hand_computed_case():
    text = torch.eye(3)  # prompts 0, 1, 2 along the axes
    audio = torch.tensor(
        [
            [0.9, 0.1, 0.0],  # own prompt 0: first
            [0.6, 0.5, 0.1],  # own prompt 1: second
            [0.5, 0.4, 0.3],
        ]
    )  # own prompt 2: third
    result = prompt_ranking.prompt_ranking(audio, text, torch.tensor([0, 1, 2]))
    assert result == pytest.approx({"top1": 1 / 3, "mean_rank": 2.0, "chance": 1 / 3})


@pytest.mark.slow
def test_cli_on_generated_clips(tiny_ldm_checkpoint, tmp_path, capsys):
    out = tmp_path / "gen"
    assert (
        generate.main(
            [
                "--ckpt",
                str(tiny_ldm_checkpoint),
                "--text",
                "a dog barks",
                "--text",
                "rain",
                "--repeat",
                "2",
                "--out",
                str(out),
                "--steps",
                "2",
                "--duration",
                "0.64",
            ]
        )
        == 0
    )
    clap = tiny_ldm_checkpoint.parent / "clap.ckpt"
    report = tmp_path / "r.json"
    real = tmp_path / "real.jsonl"  # the generated clips again, plus one clip with another caption
    write_tone(tmp_path / "other.wav", 0.5)
    real.write_text(
        (out / "generated.jsonl").read_text().replace('"path": "', f'"path": "{out}/')
        + json.dumps({"id": "x", "path": str(tmp_path / "other.wav"), "captions": ["a cat"]})
        + "\n"
    )
    assert (
        prompt_ranking.main(
            ["--generated", str(out), "--clap-ckpt", str(clap), "--json", str(report), "--reference", str(real)]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "4 clips, 2 prompts" in printed and "(chance 50%)" in printed and "reference: 4 real clips" in printed
    result = json.loads(report.read_text())
    assert result["clips"] == 4 and set(result["per_prompt"]) == {"a dog barks", "rain"}
    assert result["reference"]["top1"] == result["top1"]  # the same audio ranks the same
    assert prompt_ranking.main(["--generated", str(tmp_path / "none"), "--clap-ckpt", str(clap)]) == 2


@pytest.mark.slow
def test_chain_benchmark_on_tiny_checkpoints(tiny_ldm_checkpoint, tiny_lcm_checkpoint, tmp_path, capsys):
    """bench/prompt_following.py end to end: every row, the JSON's headline keys, --save and --generated."""
    from bench import prompt_following

    prompts = tone_clips(tmp_path, 6, extra_caption="x")
    clap = tiny_ldm_checkpoint.parent / "clap.ckpt"
    common = [
        "--clap",
        str(clap),
        "--manifest",
        str(tmp_path / "m.jsonl"),
        "--prompts",
        str(tmp_path / "prompts.txt"),
        "--clips-per-prompt",
        "2",
        "--seconds",
        "0.64",
        "--steps",
        "2",
        "--device",
        "cpu",
    ]
    out = tmp_path / "r.json"
    assert (
        prompt_following.main(
            [
                "--ldm",
                str(tiny_ldm_checkpoint),
                *common,
                "--guidance",
                "1",
                "3",
                "--save",
                str(tmp_path / "saved"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    names = [r["row"] for r in result["rows"]]
    assert names == [
        "real",
        "mel > griffin-lim",
        "mel > vae > gl",
        "mel > vocoder",
        "mel > vae > vocoder",
        "ldm audio g=1",
        "ldm text g=1",
        "ldm audio g=3",
        "ldm text g=3",
    ]
    assert all(r["clips"] == 4 and 0 <= r["top1"] <= 1 and set(r["per_prompt"]) == set(prompts) for r in result["rows"])
    by_name = {r["row"]: r for r in result["rows"]}
    assert result["top1"] == by_name["ldm text g=1"]["top1"] and result["fd_clap"] == by_name["ldm text g=1"]["fd_clap"]
    assert result["top1_real"] == by_name["real"]["top1"]
    assert result["top1_chain"] == by_name["mel > vae > vocoder"]["top1"]
    assert result["fd_clap_real_split"] >= 0 and "prompt_following.py" in result["command"]
    # the saved text row, scored again from its folder, gives the same figures
    saved = tmp_path / "saved" / "ldm_text_g_1"
    assert len(list(saved.glob("*.wav"))) == 4
    assert prompt_following.main(["--ldm", "none", *common, "--generated", str(saved), "--out", str(out)]) == 0
    again = json.loads(out.read_text())
    assert [r["row"] for r in again["rows"]] == ["real", "mel > griffin-lim", f"ldm text ({saved.name})"]
    assert again["top1"] == pytest.approx(result["top1"])
    # a consistency-distilled student beside the teacher: its own rows and headline keys
    assert (
        prompt_following.main(
            [
                "--ldm",
                "none",
                *common,
                "--student",
                str(tiny_lcm_checkpoint),
                "--guidance",
                "4",
                "--student-steps",
                "2",
                "--vae",
                str(clap.parent / "vae.ckpt"),
                "--ldm-griffin-lim",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    student = json.loads(out.read_text())
    assert [r["row"] for r in student["rows"]][-2:] == ["lcm audio g=4 > gl", "lcm text g=4 > gl"]
    assert student["top1_student"] == student["rows"][-1]["top1"] and student["top1"] is None
    assert "the lcm student (2 steps)" in capsys.readouterr().out
    assert prompt_following.main(["--ldm", "none", *common, "--prompts", str(tmp_path / "m.jsonl")]) == 2
    assert "no clip is captioned" in capsys.readouterr().err


@pytest.mark.slow
def test_chain_benchmark_sets_an_istft_vocoders_projections(tiny_ldm_checkpoint, tmp_path):
    """``--vocoder-projections N``: an iSTFT vocoder decodes with N Griffin-Lim projections (its
    ``model.istft_inference_phase_iters``); without it, the checkpoint's count (here 2)."""
    import soundfile as sf

    from audioldm.pipeline.outputs import slug
    from bench import prompt_following
    from tests.ldm_fixtures import write_stage_checkpoint

    tone_clips(tmp_path, 4)
    vocoder = write_stage_checkpoint(
        "hifigan",
        tmp_path / "istft.ckpt",
        extra=(
            "model.generator=istft",
            "model.istft_n_fft=1024",
            "model.istft_channels=32",
            "model.istft_layers=2",
            "model.istft_mel_anchor=true",
            "model.istft_phase_iters=2",
        ),
    )
    common = [
        "--ldm",
        "none",
        "--vocoder",
        str(vocoder),
        "--clap",
        str(tiny_ldm_checkpoint.parent / "clap.ckpt"),
        "--manifest",
        str(tmp_path / "m.jsonl"),
        "--prompts",
        str(tmp_path / "prompts.txt"),
        "--clips-per-prompt",
        "2",
        "--seconds",
        "0.64",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "r.json"),
    ]

    def vocoded(*extra: str):
        folder = tmp_path / ("saved" + "_".join(extra))
        assert prompt_following.main([*common, *extra, "--save", str(folder)]) == 0
        return sf.read(sorted((folder / slug("mel > vocoder")).glob("*.wav"))[0])[0]

    default, two, sixteen = vocoded(), vocoded("--vocoder-projections", "2"), vocoded("--vocoder-projections", "16")
    assert (default == two).all()
    assert abs(sixteen - two).max() > 1e-2 * abs(two).max()


@pytest.mark.slow
def test_latent_statistics_benchmark_on_a_tiny_checkpoint(tiny_ldm_checkpoint, tmp_path, capsys):
    """bench/latent_statistics.py end to end: real and sampled latent rows, the x_0 rows and the JSON."""
    from bench import latent_statistics

    tone_clips(tmp_path, 4)
    out = tmp_path / "s.json"
    assert (
        latent_statistics.main(
            [
                "--ldm",
                str(tiny_ldm_checkpoint),
                "--manifest",
                str(tmp_path / "m.jsonl"),
                "--prompts",
                str(tmp_path / "prompts.txt"),
                "--clips-per-prompt",
                "2",
                "--seconds",
                "0.64",
                "--steps",
                "2",
                "--guidance",
                "1",
                "4",
                "--device",
                "cpu",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert [r["row"] for r in result["rows"]] == ["real", "sampled g=1", "sampled g=4"]
    assert all(len(r["std"]) == 8 and r["abs_max"] > 0 for r in result["rows"])
    assert set(result["std_ratio"]) == {"sampled g=1", "sampled g=4"} and result["prediction_type"] == "v_prediction"
    assert [r["t"] for r in result["x0"]] == [999, 900, 800, 600, 200]
    # an untrained UNet's x_0 at t = 999 is far worse than predicting the mean: what the check is for
    assert result["x0"][0]["x0_mse"] > result["x0"][0]["mean_mse"]
    assert "latent_statistics.py" in result["command"]
    assert (
        latent_statistics.main(
            ["--ldm", str(tiny_ldm_checkpoint), "--manifest", str(tmp_path / "none.jsonl"), "--out", str(out)]
        )
        == 2
    )
    assert "none.jsonl" in capsys.readouterr().err


@pytest.mark.slow
def test_mel_inversion_benchmark_on_a_tiny_clap(tiny_ldm_checkpoint, tmp_path, capsys):
    """bench/mel_inversion.py end to end: its rows, and the true phase reconstructing the mel best of them."""
    from bench import mel_inversion

    tone_clips(tmp_path, 4)
    out = tmp_path / "inv.json"
    assert (
        mel_inversion.main(
            [
                "--clap",
                str(tiny_ldm_checkpoint.parent / "clap.ckpt"),
                "--manifest",
                str(tmp_path / "m.jsonl"),
                "--prompts",
                str(tmp_path / "prompts.txt"),
                "--clips-per-prompt",
                "2",
                "--seconds",
                "0.64",
                "--griffin-lim",
                "4",
                "--device",
                "cpu",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    by_name = {r["row"]: r for r in result["rows"]}
    assert list(by_name) == [
        "real",
        "pinv + random phase",
        "pinv + zero phase",
        "pinv + griffin-lim 4",
        "pinv + integrated phase",
        "pinv + integrated phase + griffin-lim 4",
        "pinv + true phase",
        "true magnitude + random",
    ]
    assert all(r["clips"] == 4 for r in result["rows"]) and by_name["real"]["mel_l1"] < 1e-4
    # the real phase with the mel's magnitude is nearly consistent; a random phase is not; the phase a steady
    # tone's magnitude implies (its instantaneous frequency summed over time) is far closer to consistent
    assert (
        by_name["pinv + true phase"]["mel_l1"]
        < by_name["pinv + griffin-lim 4"]["mel_l1"]
        < by_name["pinv + random phase"]["mel_l1"]
    )
    assert by_name["pinv + integrated phase"]["mel_l1"] < 0.7 * by_name["pinv + random phase"]["mel_l1"]
    assert "mel_inversion.py" in result["command"]
    assert (
        mel_inversion.main(
            [
                "--clap",
                str(tiny_ldm_checkpoint.parent / "clap.ckpt"),
                "--manifest",
                str(tmp_path / "none.jsonl"),
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "none.jsonl" in capsys.readouterr().err
