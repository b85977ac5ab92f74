"""The CLAP stage: shapes, LAION-size parameter count, feature parity with transformers,
tokenizers, learning, DDP loss equality, retrieval metrics and an end-to-end run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from transformers import ClapConfig as HfClapConfig
from transformers import ClapFeatureExtractor, ClapModel

import train
from audioldm.models.clap import ClapConfig, ClapEmbedder, hf_config
from audioldm.models.clap_features import ClapAudioFeatures
from audioldm.models.clap_tokenizer import ClapTokenizer, TokenizerError
from evaluation.retrieval import retrieval_metrics, zero_shot_correct
from lightning_modules.clap import make_clip_loss
from tests.conftest import write_manifest_lines, write_tone

REPO = Path(__file__).resolve().parents[1]
DEMO = str(REPO / "configs" / "demo" / "clap.yaml")
TINY = ClapConfig(
    text_hidden_size=32,
    text_layers=1,
    text_heads=2,
    text_intermediate_size=64,
    audio_patch_embeds_hidden_size=16,
    audio_depths=[1, 1],
    audio_heads=[1, 2],
    audio_seconds=1.0,
)


def tiny_embedder(seed: int = 0) -> ClapEmbedder:
    torch.manual_seed(seed)
    return ClapEmbedder(TINY)


def fixed_batch() -> tuple[torch.Tensor, list[str]]:
    t = torch.arange(16000) / 16000
    freqs = [200.0, 400.0, 800.0, 1600.0]
    return torch.stack([0.3 * torch.sin(2 * torch.pi * f * t) for f in freqs]), [
        f"a tone at {int(f)} hertz" for f in freqs
    ]


def test_full_size_parameter_count_matches_laion_htsat_tiny_roberta_base():
    """LAION-CLAP HTSAT-tiny + roberta-base (non-fusion) as transformers defines it: 153.5M."""
    with torch.device("meta"):
        ours = ClapModel(hf_config(ClapConfig(), vocab_size=50265, pad_id=1))
        reference = ClapModel(HfClapConfig())
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ours) == count(reference) == 153_492_890


def test_embeddings_are_normalised_and_shaped():
    embedder = tiny_embedder()
    audio = embedder.embed_audio(torch.randn(3, 12000) * 0.1)
    text = embedder.embed_text(["a dog barks", "rain", "an engine idles"])
    assert audio.shape == text.shape == (3, 512)
    torch.testing.assert_close(audio.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(text.norm(dim=-1), torch.ones(3))


@pytest.mark.parametrize("seconds", [3.0, 10.0])
def test_features_equal_transformers_feature_extractor(seconds):
    reference = ClapFeatureExtractor(
        truncation="rand_trunc", padding="repeatpad", frequency_min=50, frequency_max=14000
    )
    wave = (np.random.default_rng(0).standard_normal(int(48000 * seconds)) * 0.1).astype(np.float32)
    expected = reference(wave, sampling_rate=48000, return_tensors="np")["input_features"]
    ours = ClapAudioFeatures()(torch.from_numpy(wave)[None], already_resampled=True).numpy()
    assert ours.shape == expected.shape == (1, 1, 1001, 64)
    np.testing.assert_allclose(ours, expected, atol=1e-3)  # dB values; float32 vs float64 STFT


def test_tokenizers(tmp_path):
    bpe = ClapTokenizer(None)
    ids, mask = bpe(["a dog barks", ""])
    assert ids.shape == (2, 77) and bpe.vocab_size == 49408 and int(mask[0].sum()) == 6  # <start> a dog bark s <end>
    with pytest.raises(TokenizerError, match=f"tokenizer folder not found: {tmp_path / 'nope'}"):
        ClapTokenizer(str(tmp_path / "nope"))
    # a RoBERTa-style (byte-level BPE) tokenizer folder on disk, made here from a tiny vocabulary
    from transformers import RobertaTokenizer

    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>", "a", "Ġdog", "Ġbarks", "d", "o", "g"])}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    RobertaTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt")).save_pretrained(tmp_path / "tok")
    roberta = ClapTokenizer(str(tmp_path / "tok"), max_length=8)
    ids, mask = roberta(["a"])
    assert roberta.vocab_size == 11 and roberta.pad_id == 1  # the 10 tokens + <mask>
    assert ids[0].tolist() == [0, 4, 2, 1, 1, 1, 1, 1] and mask[0].tolist() == [1] * 3 + [0] * 5
    embedder = ClapEmbedder(
        ClapConfig(**{**TINY.__dict__, "tokenizer_path": str(tmp_path / "tok"), "max_text_length": 8})
    )
    assert embedder.embed_text(["a dog barks"]).shape == (1, 512)


@pytest.mark.slow
def test_contrastive_loss_falls_on_a_fixed_batch():
    embedder = tiny_embedder().eval()  # dropout off: a clean signal on 4 clips
    waves, captions = fixed_batch()
    loss_fn = make_clip_loss(0, 1)
    optimizer = torch.optim.AdamW(embedder.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        loss = loss_fn(embedder.embed_audio(waves), embedder.embed_text(captions), embedder.logit_scale)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.slow
def test_two_process_ddp_loss_equals_full_batch_loss(tmp_path):
    embedder = tiny_embedder().eval()
    waves, captions = fixed_batch()
    with torch.no_grad():
        full = float(
            make_clip_loss(0, 1)(embedder.embed_audio(waves), embedder.embed_text(captions), embedder.logit_scale)
        )
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(REPO / "tests" / "clap_ddp_probe.py"),
        str(tmp_path),
    ]
    result = subprocess.run(
        cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [json.loads((tmp_path / f"rank{r}.json").read_text())["loss"] for r in (0, 1)]
    assert losses == pytest.approx([full, full], rel=1e-5)


def test_retrieval_metrics_on_hand_made_similarities():
    eye = torch.eye(4)
    assert retrieval_metrics(eye, eye)["t2a_R@1"] == 1.0
    text = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0]]), dim=-1)
    audio = torch.nn.functional.normalize(torch.tensor([[0.9, 0.2], [1.0, 0.0], [0.0, 1.0]]), dim=-1)
    m = retrieval_metrics(text, audio)
    # text 0 ranks its audio 0 second (audio 1 is closer); texts 1 and 2 rank theirs first
    assert m["t2a_R@1"] == pytest.approx(2 / 3) and m["t2a_R@5"] == 1.0
    assert m["t2a_mAP@10"] == pytest.approx((0.5 + 1.0 + 1.0) / 3)
    correct = zero_shot_correct(audio, text[[0, 2]], [["dog"], ["cat", "dog"], ["bird"]], ["dog", "bird"])
    assert correct[0] == 1.0 and correct[1] == 1.0 and correct[2] == 1.0


@pytest.mark.slow
def test_train_logs_retrieval_and_zero_shot(tmp_path):
    rows = []
    for i in range(16):
        label = ["low", "high"][i % 2]
        write_tone(tmp_path / f"{i}.wav", 1.0, freq=(200 if label == "low" else 2000) + 10 * i, seed=i)
        rows.append(
            {
                "id": f"t{i}",
                "path": f"{i}.wav",
                "captions": [f"a {label} tone"],
                "labels": [label],
                "split": "val" if i < 4 else "train",
            }
        )
    manifest = write_manifest_lines(tmp_path / "m.jsonl", rows)
    out = tmp_path / "runs"
    args = [
        "--config",
        DEMO,
        f"data.train_manifest={manifest}",
        f"output_dir={out}",
        "name=c",
        "data.num_workers=0",
        "data.batch_size=4",
        "data.segment_seconds=1.0",
        "model.audio_seconds=1.0",
        "trainer.max_steps=3",
        "trainer.check_val_every_n_epoch=1",
        "trainer.log_every_n_steps=1",
        "trainer.enable_progress_bar=false",
    ]
    assert train.main(args) == 0
    events = EventAccumulator(str(out / "c" / "version_0")).Reload()
    tags = set(events.Tags()["scalars"])
    assert {
        "train/loss",
        "train/logit_scale",
        "val/loss",
        "val/t2a_R@1",
        "val/t2a_R@5",
        "val/t2a_R@10",
        "val/a2t_R@1",
        "val/a2t_mAP@10",
        "val/t2a_mAP@10",
        "val/zeroshot_acc",
    } <= tags
    acc = events.Scalars("val/zeroshot_acc")[-1].value
    assert 0.0 <= acc <= 1.0


def test_audio_features_stay_float32_under_bf16_autocast():
    """Under bf16 the resampler's rounding noise fills the empty band above 8 kHz of 16 kHz audio (the
    top mel bins moved ~11 dB); the features are therefore always computed in float32."""
    features = ClapAudioFeatures(max_seconds=1.0)
    wave = torch.sin(torch.arange(16000) / 16000 * 2 * torch.pi * 440)[None] * 0.5
    reference = features(wave)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = features(wave)
    assert under_autocast.dtype == torch.float32 and torch.equal(under_autocast, reference)
