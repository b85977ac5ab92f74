"""VGGish and PANNs CNN14 backbones: parity with torchvggish 0.2 and frechet-audio-distance's CNN14,
the official weight-file layouts, and one-line errors for missing, foreign or broken files."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluation.backbones import BackboneError
from evaluation.backbones.vggish import VGGISH_FILE, VGGISH_URL, VGGish, load_vggish, waveform_to_examples

torchvggish = pytest.importorskip("torchvggish")  # requirements-dev: the reference implementation


def noise_and_tone(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    return 0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.1 * rng.standard_normal(t.size)


def one_line_error(call, *needles: str) -> str:
    with pytest.raises(BackboneError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and all(n in message for n in needles), message
    return message


@pytest.fixture(scope="module")
def reference_vgg() -> torch.nn.Module:
    """torchvggish 0.2's VGG (with its final ReLU, no PCA), random weights, built without downloads."""
    torch.manual_seed(0)
    return torchvggish.torchvggish._vgg(postprocess=False).eval()


@pytest.fixture(scope="module")
def reference_fad_vgg(reference_vgg) -> torch.nn.Module:
    """The same network as audioldm_eval sets it up for FAD: the last ReLU of ``embeddings`` removed."""
    model = copy.deepcopy(reference_vgg)
    model.embeddings = torch.nn.Sequential(*list(model.embeddings.children())[:-1])
    return model


@pytest.fixture(scope="module")
def vggish_dir(tmp_path_factory, reference_vgg) -> Path:
    folder = tmp_path_factory.mktemp("vggish")
    torch.save(reference_vgg.state_dict(), folder / VGGISH_FILE)
    return folder


def test_examples_match_torchvggish():
    audio = noise_and_tone(3.3)
    expected = torchvggish.vggish_input.waveform_to_examples(audio, 16000).detach()
    for dtype in (torch.float64, torch.float32):
        ours = waveform_to_examples(torch.from_numpy(audio).to(dtype))
        assert ours.shape == expected.shape == (3, 1, 96, 64) and ours.dtype == torch.float32
        diff = (ours - expected).abs().max().item()
        print(f"waveform_to_examples max |diff| vs torchvggish ({dtype}): {diff:.2e}")
        assert diff < 1e-4
    assert waveform_to_examples(torch.zeros(160000)).shape == (10, 1, 96, 64)
    assert waveform_to_examples(torch.zeros(15600)).shape == (1, 1, 96, 64)  # 96 frames of 25 ms every 10 ms
    for n in (15599, 8000, 100, 0):
        assert waveform_to_examples(torch.zeros(n)).shape == (0, 1, 96, 64)
    short = torchvggish.vggish_input.waveform_to_examples(noise_and_tone(0.5), 16000)
    assert short.shape[0] == 0


def test_vggish_matches_torchvggish(reference_vgg, reference_fad_vgg):
    examples = waveform_to_examples(torch.from_numpy(noise_and_tone(3.3, seed=1)))
    with_relu, fad = VGGish(final_relu=True).eval(), VGGish(final_relu=False).eval()
    with_relu.load_state_dict(reference_vgg.state_dict())
    fad.load_state_dict(reference_vgg.state_dict())
    with torch.no_grad():
        expected = reference_vgg(examples.clone())
        ours = with_relu(examples)
        expected_fad = reference_fad_vgg(examples.clone())
        ours_fad = fad(examples)
    assert ours.shape == (3, 128)
    print(
        f"VGGish max |diff| vs torchvggish: {(ours - expected).abs().max().item():.2e} (final ReLU), "
        f"{(ours_fad - expected_fad).abs().max().item():.2e} (FAD, none)"
    )
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours_fad, expected_fad, rtol=1e-5, atol=1e-6)
    assert (ours_fad < 0).any() and torch.equal(ours_fad.clamp(min=0), ours)


def test_load_vggish_official_layout(vggish_dir, reference_fad_vgg):
    model = load_vggish(vggish_dir)
    assert not model.training and not isinstance(model.embeddings[-1], torch.nn.ReLU)
    wave = torch.from_numpy(noise_and_tone(2.0, seed=2)).float()
    examples = waveform_to_examples(wave)
    with torch.no_grad():
        expected = reference_fad_vgg(examples.clone())
    torch.testing.assert_close(model.embed(wave), expected, rtol=1e-5, atol=1e-6)
    assert model.embed(wave[:15000]).shape == (0, 128)


def test_vggish_file_errors(tmp_path, vggish_dir):
    one_line_error(lambda: load_vggish(tmp_path), VGGISH_FILE, str(tmp_path.absolute()), VGGISH_URL)
    state = torch.load(vggish_dir / VGGISH_FILE, weights_only=True)
    state["embeddings.4.weights"] = state.pop("embeddings.4.weight")
    torch.save(state, tmp_path / VGGISH_FILE)
    one_line_error(
        lambda: load_vggish(tmp_path), str(tmp_path / VGGISH_FILE), "embeddings.4.weight", "embeddings.4.weights"
    )
    data = (vggish_dir / VGGISH_FILE).read_bytes()
    (tmp_path / VGGISH_FILE).write_bytes(data[: len(data) // 2])  # truncated download
    one_line_error(lambda: load_vggish(tmp_path), str(tmp_path / VGGISH_FILE), "not a readable")
    (tmp_path / VGGISH_FILE).write_bytes(b"<html>404 Not Found</html>")
    one_line_error(lambda: load_vggish(tmp_path), str(tmp_path / VGGISH_FILE), "not a readable")
    torch.save({"model": {"fc1.weight": torch.zeros(2, 2)}}, tmp_path / VGGISH_FILE)  # another model's file
    one_line_error(lambda: load_vggish(tmp_path), str(tmp_path / VGGISH_FILE), "model")


# PANNs CNN14: frechet-audio-distance's package import takes ~11 s, so these share one module import.


@pytest.fixture(scope="module")
def pann_models():
    from evaluation.backbones.panns import build_cnn14

    build_cnn14()  # imports frechet_audio_distance (with HF_HUB_OFFLINE set)
    from frechet_audio_distance.models import pann

    return pann


@pytest.fixture(scope="module")
def reference_cnn14(pann_models) -> torch.nn.Module:
    """fad's Cnn14_16k with random weights and non-trivial batch-norm statistics."""
    torch.manual_seed(0)
    model = pann_models.Cnn14_16k(16000, 512, 160, 64, 50, 8000, 527)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
    return model.eval()


@pytest.fixture(scope="module")
def waves() -> torch.Tensor:
    return torch.from_numpy(np.stack([noise_and_tone(1.0, seed=3), noise_and_tone(1.0, seed=4)])).float()


def test_cnn14_features(reference_cnn14, pann_models, waves):
    from evaluation.backbones.panns import cnn14_from_state_dict

    features = cnn14_from_state_dict(reference_cnn14.state_dict())
    out = features(waves)
    assert out["2048"].shape == (2, 2048) and out["logits"].shape == (2, 527)
    assert (out["2048"] >= 0).all() and (out["2048"] > 0).any()
    with torch.no_grad():
        expected = reference_cnn14(waves)
        torch.testing.assert_close(out["logits"], features.model.fc_audioset(out["2048"]))
        # the general Cnn14 class with audioldm_eval's 16 kHz settings is the same network
        general = pann_models.Cnn14(16000, 512, 160, 64, 50, 8000, 527)
        general.load_state_dict(reference_cnn14.state_dict())
        torch.testing.assert_close(general.eval()(waves)["embedding"], out["2048"])
    torch.testing.assert_close(out["2048"], expected["embedding"])
    torch.testing.assert_close(torch.sigmoid(out["logits"]), expected["clipwise_output"])
    with pytest.raises(ValueError, match="at least 4960 samples"):
        features(waves[:, :4000])


def test_load_cnn14_official_layout_and_errors(tmp_path, reference_cnn14, waves):
    from evaluation.backbones.panns import PANN_FILE, PANN_URL, load_cnn14

    one_line_error(lambda: load_cnn14(tmp_path), PANN_FILE, str(tmp_path.absolute()), PANN_URL)
    path = tmp_path / PANN_FILE
    state = reference_cnn14.state_dict()
    torch.save({"model": state, "iteration": 0}, path)
    model = load_cnn14(tmp_path)
    assert not model.training
    with torch.no_grad():
        expected = reference_cnn14(waves)
    torch.testing.assert_close(model(waves)["2048"], expected["embedding"])
    torch.testing.assert_close(torch.sigmoid(model(waves)["logits"]), expected["clipwise_output"])

    torch.save({"model": {k: v for k, v in state.items() if k != "fc1.bias"}}, path)
    one_line_error(lambda: load_cnn14(tmp_path), str(path), "fc1.bias")
    torch.save({"features.0.weight": torch.zeros(1)}, path)  # e.g. a VGGish file under this name
    one_line_error(lambda: load_cnn14(tmp_path), str(path), "no 'model' entry")
    path.write_bytes(b"\x00garbage" * 100)
    one_line_error(lambda: load_cnn14(tmp_path), str(path), "not a readable")
