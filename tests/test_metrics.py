"""Evaluation metrics: Frechet math against frechet-audio-distance and scipy, KL and IS on
hand-computed cases, streaming == one-shot, reset, and 2-process DDP == one process."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from evaluation.clap_score import ClapScore
from evaluation.frechet import FrechetDistance, frechet_distance
from evaluation.inception_score import InceptionScore
from evaluation.kl import EPS, PairedKL
from tests.metrics_ddp_probe import make_data, run_metrics

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fad_frechet():
    """frechet-audio-distance's Frechet math, without its constructor (which downloads models)."""
    from frechet_audio_distance import FrechetAudioDistance  # ~11 s: imports laion_clap

    fad = FrechetAudioDistance.__new__(FrechetAudioDistance)
    return lambda mu1, s1, mu2, s2: float(FrechetAudioDistance.calculate_frechet_distance(fad, mu1, s1, mu2, s2))


def scipy_frechet(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if np.iscomplexobj(covmean):
        assert np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3)
        covmean = covmean.real
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def correlated(rng: np.random.Generator, n: int, d: int, shift: float) -> np.ndarray:
    return rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * 0.3 + shift


def stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.mean(x, axis=0), np.cov(x, rowvar=False)


@pytest.mark.parametrize("n1,n2,d", [(300, 350, 64), (500, 450, 128)])
def test_frechet_distance_equals_fad_and_scipy(fad_frechet, n1, n2, d):
    rng = np.random.default_rng(d)
    x, y = correlated(rng, n1, d, 1.0), correlated(rng, n2, d, 1.2)
    (mu1, s1), (mu2, s2) = stats(x), stats(y)
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(fad_frechet(mu1, s1, mu2, s2), rel=1e-6)
    assert ours == pytest.approx(scipy_frechet(mu1, s1, mu2, s2), rel=1e-6)
    metric = FrechetDistance(d)  # streaming mean/covariance == np.mean / np.cov
    metric.update(torch.from_numpy(y), real=True)
    assert metric(torch.from_numpy(x), real=False) is None  # forward == update for set-level metrics
    assert metric.compute().dtype == torch.float64
    assert float(metric.compute()) == pytest.approx(scipy_frechet(mu1, s1, mu2, s2), rel=1e-6)


def test_frechet_self_is_zero_and_grows_with_noise():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(correlated(rng, 400, 32, 2.0))
    mu, s = stats(x.numpy())
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-6 * np.trace(s)
    noise = torch.from_numpy(rng.standard_normal(x.shape))
    values = []
    for level in (0.0, 0.1, 0.3, 1.0, 3.0):
        metric = FrechetDistance(32)
        metric.update(x, real=True)
        metric.update(x + level * noise, real=False)
        values.append(float(metric.compute()))
    assert abs(values[0]) < 1e-6 * np.trace(s)
    assert all(a < b for a, b in zip(values, values[1:])), values


def test_frechet_needs_two_embeddings_per_set():
    metric = FrechetDistance(4)
    metric.update(torch.randn(5, 4), real=True)
    metric.update(torch.randn(1, 4), real=False)
    with pytest.raises(ValueError, match="at least 2 fake embeddings"):
        metric.compute()


def test_kl_hand_cases():
    logits = torch.randn(6, 10)
    kl = PairedKL()
    kl.update(logits, logits)  # identical: KL(p || p + EPS) = -sum p log(1 + EPS / p) ~ -C * EPS
    out = kl.compute()
    assert set(out) == {"kl_softmax", "kl_sigmoid"}
    assert abs(float(out["kl_softmax"])) < 10 * EPS and abs(float(out["kl_sigmoid"])) < 10 * EPS
    # two pairs of 2-class logits: gen [0, 0] vs ref [ln 3, 0], then identical zeros
    kl = PairedKL()
    kl.update(torch.zeros(2, 2), torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]], dtype=torch.float64))
    half = lambda p: p * math.log(p / (0.5 + EPS))  # noqa: E731  target p against prediction 0.5
    softmax = (half(0.75) + half(0.25) + 2 * half(0.5)) / 2  # softmax(ln 3, 0) = (0.75, 0.25)
    sigmoid = (half(0.75) + half(0.5) + 2 * half(0.5)) / 2  # sigmoid(ln 3) = 0.75, sigmoid(0) = 0.5
    out = kl.compute()
    assert float(out["kl_softmax"]) == pytest.approx(softmax, rel=1e-12)
    assert float(out["kl_sigmoid"]) == pytest.approx(sigmoid, rel=1e-12)


def test_inception_score_hand_cases():
    classes = 5
    one_hot = 50.0 * torch.eye(classes).repeat(4, 1)  # confident, uniform over classes
    isc = InceptionScore(splits=1)
    isc.update(one_hot)
    assert float(isc.compute()["is_mean"]) == pytest.approx(classes, rel=1e-9)
    # 10 splits of the seeded shuffle: each chunk scores exp(entropy of its class histogram)
    one_hot = 50.0 * torch.eye(classes).repeat(11, 1)
    labels = np.arange(len(one_hot)) % classes
    perm = np.random.RandomState(2020).permutation(len(one_hot))
    expected = []
    for i in range(10):
        counts = np.bincount(labels[perm][i * 55 // 10 : (i + 1) * 55 // 10], minlength=classes)
        freq = counts[counts > 0] / counts.sum()
        expected.append(math.exp(-(freq * np.log(freq)).sum()))
    isc = InceptionScore()
    isc.update(one_hot)
    out = isc.compute()
    assert float(out["is_mean"]) == pytest.approx(np.mean(expected), rel=1e-9)
    assert float(out["is_std"]) == pytest.approx(np.std(expected), rel=1e-9)
    isc = InceptionScore()
    isc.update(torch.randn(1, 7).repeat(30, 1))  # identical rows: every split scores 1
    out = isc.compute()
    assert float(out["is_mean"]) == pytest.approx(1.0, rel=1e-12) and float(out["is_std"]) < 1e-12


def test_inception_score_ids_undo_any_arrival_order():
    logits = 3 * torch.randn(40, 6)
    plain = InceptionScore()
    plain.update(logits)
    order = torch.randperm(40)
    with_ids = InceptionScore()
    with_ids.update(logits[order[:15]], ids=order[:15])
    with_ids.update(logits[order[15:]], ids=order[15:])
    assert {k: float(v) for k, v in with_ids.compute().items()} == {k: float(v) for k, v in plain.compute().items()}
    with pytest.raises(ValueError, match="some rows only"):
        with_ids.update(logits[:3])
        with_ids.compute()


def _batches(n: int, rng: np.random.Generator) -> list[slice]:
    cuts = np.sort(rng.choice(np.arange(1, n), size=4, replace=False))
    edges = [0, *cuts.tolist(), n]
    return [slice(a, b) for a, b in zip(edges, edges[1:])]


def _values(metric) -> dict[str, float]:
    out = metric.compute()
    return {k: float(v) for k, v in out.items()} if isinstance(out, dict) else {"value": float(out)}


@pytest.mark.filterwarnings("ignore:The ``compute`` method of metric")
def test_streaming_equals_one_shot_and_reset():
    data, rng = make_data(1), np.random.default_rng(0)
    feeds = {  # metric, list of update argument tuples for all rows at once
        "fd": (lambda: FrechetDistance(data["real"].shape[1]), [(data["real"], True), (data["fake"], False)]),
        "kl": (PairedKL, [(data["gen_logits"], data["ref_logits"])]),
        "is": (InceptionScore, [(data["is_logits"],)]),
        "clap": (ClapScore, [(data["audio"], data["text"])]),
    }
    for name, (make, calls) in feeds.items():
        one_shot = make()
        for args in calls:
            one_shot.update(*args)
        expected = _values(one_shot)
        streamed = make()
        for _ in range(2):  # second round after reset()
            for args in calls:
                tensors = [a for a in args if isinstance(a, torch.Tensor)]
                for b in _batches(len(tensors[0]), rng):
                    streamed.update(*[a[b] if isinstance(a, torch.Tensor) else a for a in args])
            got = _values(streamed)
            assert got.keys() == expected.keys()
            for key in expected:
                assert got[key] == pytest.approx(expected[key], rel=1e-9, abs=1e-12), (name, key)
            streamed.reset()
        with pytest.raises(ValueError):
            streamed.compute()


@pytest.mark.slow
def test_two_process_ddp_equals_one_process(tmp_path):
    expected = run_metrics(make_data())
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(REPO / "tests" / "metrics_ddp_probe.py"),
        str(tmp_path),
    ]
    result = subprocess.run(
        cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for rank in (0, 1):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got.keys() == expected.keys()
        for key in expected:  # clap's inputs are float32, but it sums in float64 as well
            assert got[key] == pytest.approx(expected[key], rel=1e-9), (rank, key)
