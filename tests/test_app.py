"""app.py on a tiny checkpoint: every api_name called through gradio_client against the app launched on a
local port (outputs, seeds, the error messages in the page), and the missing-checkpoint message."""

from __future__ import annotations

import socket

import pytest
import soundfile as sf
from gradio_client import Client, handle_file

import app
from audioldm.pipeline.text_to_audio import TextToAudio
from audioldm.request.jobs import MAX_CLIPS
from tests.conftest import write_tone

FAST = {"negative": "", "steps": 2, "sampler": "dpmsolver++", "guidance": 2.5, "seed": 5, "candidates": 1, "eta": 1.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tiny_ldm_checkpoint, tmp_path_factory):
    """(client, app url) for the app launched on a free local port."""
    pipe = TextToAudio.from_checkpoint(str(tiny_ldm_checkpoint))
    blocks = app.build_app(pipe, str(tiny_ldm_checkpoint), str(tmp_path_factory.mktemp("app_out")), max_seconds=3.0)
    port = free_port()
    blocks.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    yield Client(url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads"))), url
    blocks.close()


def value(output):
    """A component's value from an output (a plain value, or a component update {"value": ...})."""
    return output["value"] if isinstance(output, dict) and output.get("__type__") == "update" else output


def audio_of(output):
    """(samples, rate) of an audio output."""
    return sf.read(value(output))


@pytest.mark.slow
def test_text_to_audio_seeded_clips_and_settings(served):
    client, _ = served
    out = client.predict("a dog barks", 0.5, 2, *FAST.values(), api_name="/text_to_audio")
    assert len(out) == 2 * MAX_CLIPS + 2
    assert out[0]["label"] == "clip 1: seed 5" and out[2]["label"] == "clip 2: seed 6"
    assert out[4]["visible"] is False  # the unused third slot is hidden
    settings = out[-1]
    assert settings["mode"] == "text" and [c["seed"] for c in settings["clips"]] == [5, 6]
    assert "--seed 5" in settings["command"] and "--repeat 2" in settings["command"]
    first, rate = audio_of(out[0])
    assert rate == 16000 and first.shape == (8000,)
    assert open(value(out[1]), "rb").read(4) == b"\x89PNG"
    again = client.predict("a dog barks", 0.5, 1, *FAST.values(), api_name="/text_to_audio")
    assert (audio_of(again[0])[0] == first).all()  # clip 0 of seed 5, alone or in a batch


@pytest.mark.slow
def test_editing_tabs(served, tmp_path):
    client, _ = served
    wav = handle_file(str(write_tone(tmp_path / "in.wav", 0.9, 22050)))
    calls = {
        "/variation": (wav, "rain", 0.7, 0.5, 2),
        "/style_transfer": (wav, "birdsong", 0.4),
        "/inpaint": (wav, "a bell", "0.2-0.5"),
        "/super_resolution": (wav, "birdsong", 3000),
    }
    lengths = {"/variation": 8000, "/style_transfer": 14400, "/inpaint": 14400, "/super_resolution": 14400}
    for name, inputs in calls.items():
        out = client.predict(*inputs, *FAST.values(), api_name=name)
        data, rate = audio_of(out[0])
        assert rate == 16000 and data.shape == (lengths[name],), name
        assert out[-1]["command"].startswith("python generate.py --ckpt"), name
    assert len(out) == 4  # one clip slot (audio, mel), the downloads, the settings


@pytest.mark.slow
@pytest.mark.parametrize(
    "api,inputs,message",
    [
        ("/text_to_audio", ("  ", 0.5, 1), "a prompt is empty: type the text"),
        ("/text_to_audio", ("x", 9.0, 1), "Value 9.0 is greater than maximum value 3.0"),  # the slider refuses it
        ("/variation", (None, "", 0.5, 0.5, 1), "--mode variation needs a source clip (--audio)"),
        ("/inpaint", ("{wav}", "x", "0.5-3"), "is outside the clip"),
        ("/style_transfer", ("{bad}", "x", 0.5), "bad.wav: cannot read it"),
        ("/style_transfer", ("{long}", "x", 0.5), "the source must be more than 0 and at most 3 s"),
    ],
)
def test_bad_input_is_a_message_and_the_app_keeps_serving(served, tmp_path, api, inputs, message):
    client, _ = served
    files = {"{wav}": write_tone(tmp_path / "in.wav", 0.9), "{long}": write_tone(tmp_path / "long.wav", 4.0)}
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    files["{bad}"] = tmp_path / "bad.wav"
    inputs = [handle_file(str(files[v])) if isinstance(v, str) and v in files else v for v in inputs]
    with pytest.raises(Exception) as error:
        client.predict(*inputs, *FAST.values(), api_name=api)
    assert message in str(error.value) and "Traceback" not in str(error.value)
    ok = client.predict("rain", 0.5, 1, *FAST.values(), api_name="/text_to_audio")
    assert audio_of(ok[0])[1] == 16000


def test_no_checkpoint_says_how_to_make_one(tmp_path, capsys):
    assert app.main(["--ckpt", str(tmp_path / "missing.ckpt")]) == 2
    assert "error: --ckpt: file not found" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="bash scripts/demo.sh"):
        app.newest_demo_checkpoint(str(tmp_path / "runs/*/last.ckpt"))


def test_defaults_come_from_the_checkpoint(tiny_ldm_checkpoint, tiny_lcm_checkpoint, tmp_path):
    """The app starts at the guidance the run previewed with (here 7, not a fixed 2.5), and a distilled
    student at lcm, 4 steps; an unknown file keeps AudioLDM's 2.5."""
    import torch

    from audioldm.pipeline.text_to_audio import TextToAudio
    from audioldm.request.jobs import default_sampling

    def previewed_at(ckpt, name: str) -> str:  # the checkpoint of a run whose config previewed at guidance 7
        raw = torch.load(ckpt, map_location="cpu", weights_only=False)
        raw["config"]["model"]["val_guidance"] = 7.0
        torch.save(raw, tmp_path / name)
        return str(tmp_path / name)

    ldm, lcm = previewed_at(tiny_ldm_checkpoint, "ldm.ckpt"), previewed_at(tiny_lcm_checkpoint, "lcm.ckpt")
    plain = default_sampling(TextToAudio.from_checkpoint(ldm), ldm)
    assert (plain.sampler, plain.steps, plain.guidance) == ("dpmsolver++", 25, 7.0)
    student = default_sampling(TextToAudio.from_checkpoint(lcm), lcm)
    assert (student.sampler, student.steps, student.guidance) == ("lcm", 4, 7.0)
    (tmp_path / "x.ckpt").write_bytes(b"not a checkpoint")
    pipe = TextToAudio.from_checkpoint(str(tiny_ldm_checkpoint))
    assert default_sampling(pipe, str(tmp_path / "x.ckpt")).guidance == 2.5
