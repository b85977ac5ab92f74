"""The request layer (audioldm/request/): one set of bounds for generate.py, the app and evaluate.py, checked before
any model loads and refused with the same message everywhere; each request writes itself out as the generate.py
command that rebuilds it."""

from __future__ import annotations

import json

import pytest

import evaluate
import generate
from audioldm.request.jobs import Jobs
from audioldm.request.limits import Limits, RequestError, check_whole
from audioldm.request.modes import (
    InpaintRequest,
    SuperResolutionRequest,
    TextRequest,
    TransferRequest,
    VariationRequest,
    parse_spans,
)
from audioldm.request.sampling import Sampling
from tests.conftest import write_tone

# (generate.py / evaluate.py flags, the app's sampling or request values, the one message all three give)
BAD = [
    (["--guidance", "150"], {"guidance": 150.0}, "--guidance must be from 0 to 100, got 150"),
    (["--guidance", "nan"], {"guidance": float("nan")}, "--guidance must be from 0 to 100, got nan"),
    (["--steps", "2000"], {"steps": 2000}, "--steps must be a whole number from 1 to 1000, got 2000"),
    (["--steps", "0"], {"steps": 0}, "--steps must be a whole number from 1 to 1000, got 0"),
    (["--candidates", "20"], {"candidates": 20}, "--candidates must be a whole number from 1 to 16, got 20"),
    (["--seed", "-1"], {"seed": -1}, "--seed must be a whole number from 0 to 4294967295, got -1"),
    (
        ["--seed", str(2**64)],
        {"seed": 2**64},
        "--seed must be a whole number from 0 to 4294967295, got 18446744073709551616",
    ),
    (["--eta", "2"], {"eta": 2.0}, "--eta must be from 0 to 1, got 2"),
    (
        ["--duration", "100"],
        {"duration": 100.0},
        "--duration must be more than 0 and at most 30 s, got 100 s (the model learned 10.24 s clips",
    ),
]


class NoModel:
    """Stands in for the pipeline: a request that passes validation and reaches it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the pipeline was used ({name}) although the request is out of bounds")


def refuse_loading(monkeypatch) -> None:
    from audioldm.pipeline.text_to_audio import TextToAudio

    def loaded(*args, **kwargs):
        raise AssertionError("a model was loaded although the request is out of bounds")

    monkeypatch.setattr(TextToAudio, "from_checkpoint", classmethod(loaded))
    monkeypatch.setattr("audioldm.assembly.latent_diffusion.load_ldm", loaded)


def cli_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0][len("error: ") :]


@pytest.mark.parametrize("flags,values,message", BAD)
def test_the_same_bad_request_is_refused_with_the_same_message_everywhere(
    flags, values, message, tmp_path, monkeypatch, capsys
):
    refuse_loading(monkeypatch)
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"never read")
    assert generate.main(["--ckpt", str(ckpt), "--text", "a dog barks", "--out", str(tmp_path / "g"), *flags]) == 2
    from_generate = cli_error(capsys)
    manifest = tmp_path / "test.jsonl"
    write_tone(tmp_path / "a.wav", 0.5)
    manifest.write_text(json.dumps({"id": "a", "path": "a.wav", "captions": ["a tone"]}) + "\n", encoding="utf-8")
    assert (
        evaluate.main(
            [
                "--ckpt",
                str(ckpt),
                "--manifest",
                str(manifest),
                "--out",
                str(tmp_path / "e"),
                "--backbone",
                "clap",
                *flags,
            ]
        )
        == 2
    )
    from_evaluate = cli_error(capsys)
    jobs = Jobs(NoModel(), str(tmp_path / "app"), max_seconds=30.0)
    duration = values.pop("duration", 1.0)
    with pytest.raises(RequestError) as from_app:
        jobs.text("a dog barks", duration, 1, Sampling(**values))
    import app  # the page shows the request's message as it is

    with pytest.raises(app.gr.Error) as page:
        app.page_errors(lambda: jobs.text("a dog barks", duration, 1, Sampling(**values)))
    assert from_generate.startswith(message)
    assert from_generate == from_evaluate == str(from_app.value) == page.value.message
    assert not (tmp_path / "g").exists() and not (tmp_path / "e" / "metrics.json").exists()


def test_limits_are_whole_and_finite():
    assert check_whole("--steps", 4.0, 1, 1000) == 4
    for bad in (True, 2.5, float("inf"), "3", None):
        with pytest.raises(RequestError, match="--steps must be a whole number from 1 to 1000"):
            check_whole("--steps", bad, 1, 1000)
    with pytest.raises(RequestError, match="--max-duration must be a positive number of seconds, got 0"):
        Limits(0.0)
    with pytest.raises(RequestError, match="--repeat must be a whole number from 1 to 4, got 5"):
        TextRequest(prompts=["x"], duration=1.0, repeat=5).validate(Limits(max_clips=4))
    TextRequest(prompts=["x"], duration=1.0, repeat=5).validate(Limits())  # the command line has no clip bound


def test_spans_parse_from_the_cli_and_the_page_alike():
    assert parse_spans(["2-4.5", "6-7"]) == parse_spans("2-4.5, 6-7") == parse_spans(["2-4.5;6-7"])
    assert parse_spans("2-4.5 6-7") == [(2.0, 4.5), (6.0, 7.0)]
    for bad, message in (
        ("a-b", "must look like START-END"),
        ("nan-inf", "START and END must be finite"),
        ("", "needs at least one --span"),
    ):
        with pytest.raises(RequestError, match=message):
            parse_spans(bad)


@pytest.mark.parametrize(
    "request_",
    [
        TextRequest(
            Sampling(steps=7, sampler="dpmsolver++", guidance=3.0, seed=4, candidates=2, negative="hiss"),
            prompts=["a dog barks", "rain"],
            duration=2.5,
            repeat=2,
        ),
        VariationRequest(Sampling(), audio="{wav}", text="with rain", audio_weight=0.7, duration=1.5, repeat=3),
        VariationRequest(Sampling(seed=9), audio="{wav}", duration=1.0),
        TransferRequest(Sampling(eta=0.0), audio="{wav}", text="jazz piano", strength=0.25),
        InpaintRequest(Sampling(), audio="{wav}", text="a dog barks", spans=["0.1-0.2", "0.3-0.4"]),
        SuperResolutionRequest(Sampling(), audio="{wav}", text="birdsong", cutoff=4000.0),
    ],
    ids=["text", "variation", "variation-no-text", "transfer", "inpaint", "sr"],
)
def test_a_request_writes_itself_as_the_generate_command_that_rebuilds_it(request_, tmp_path):
    import shlex

    wav = write_tone(tmp_path / "in.wav", 0.5)
    if hasattr(request_, "audio"):
        request_.audio = str(wav)
    request_.validate(Limits())
    argv = shlex.split(request_.command("model.ckpt", str(tmp_path / "out")))
    assert argv[:2] == ["python", "generate.py"]
    args = generate.parse_args(argv[2:])
    rebuilt = generate.request_from_args(args)
    if hasattr(rebuilt, "audio"):
        rebuilt.audio = str(wav)  # the command names the file by its base name
    rebuilt.validate(Limits())
    assert rebuilt == request_
