"""LAION-CLAP weights -> our ClapModel (``audioldm.formats.keymaps.laion_clap``), checked against the original
LAION-CLAP code (``laion_clap`` 1.1.7): a tiny, seeded, randomly perturbed LAION ``CLAP`` (HTSAT audio branch
with 4 stages as in HTSAT-tiny but 8 channels wide; a 2-layer RoBERTa) is built once, its state dict (official key
names) is converted, and the text and audio embeddings of both are compared. Also: the DDP ``.pt`` and AudioLDM
``.ckpt`` prefixes, the tokenizer, and the errors.

laion_clap builds its text branch with ``RobertaModel.from_pretrained("roberta-base")`` (a download) and its HTSAT at
a fixed size: both are monkeypatched (to ``RobertaModel(RobertaConfig(...))`` and a small
``HTSAT_Swin_Transformer``); its projection head's input width is fixed at 768, so that ``Sequential`` is rebuilt
with the same structure and names at the tiny width.
"""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
import torch
from transformers import ClapModel, RobertaTokenizer

from audioldm.checkpoint import CheckpointError, load_weights
from audioldm.formats.keymaps.laion_clap import DROPPED, QKV, RENAMED, clap_from_laion, strip_laion_prefix
from audioldm.models.clap import ClapConfig, ClapEmbedder, hf_config
from audioldm.models.clap_features import ClapAudioFeatures
from audioldm.models.clap_tokenizer import ClapTokenizer
from tests.reference.laion_clap_reference import AUDIO_CFG, PROJ, ROBERTA_BASE_EPS

CAPTIONS = [
    "a dog barks",
    "Rain falls on a tin roof, then thunder!",
    "",
    " ".join(["a dog barks while the engine idles"] * 12),
]  # the last one is cut at 77 tokens


@pytest.fixture(scope="module")
def ref(laion_reference) -> SimpleNamespace:
    """The LAION model, its state dict, the converted config and state, and our ClapModel loaded with it."""
    r = laion_reference
    config, converted = clap_from_laion(r.state, text_vocab_size=r.vocab)
    ours = ClapModel(hf_config(config, r.vocab, pad_id=1)).eval()
    load_weights(ours, converted, "converted LAION-CLAP")
    return SimpleNamespace(
        laion=r.laion,
        state=r.state,
        config=config,
        converted=converted,
        ours=ours,
        vocab=r.vocab,
        tokenizer_dir=r.tokenizer_dir,
        get_audio_features=r.get_audio_features,
    )


def text_inputs(ref: SimpleNamespace) -> dict[str, torch.Tensor]:
    """LAION's tokenization (hook.py: RobertaTokenizer, padding="max_length", truncation=True, max_length=77)."""
    tokenizer = RobertaTokenizer.from_pretrained(ref.tokenizer_dir)
    return dict(tokenizer(CAPTIONS, padding="max_length", truncation=True, max_length=77, return_tensors="pt"))


def laion_text(ref: SimpleNamespace) -> torch.Tensor:
    with torch.no_grad():
        return ref.laion.get_text_embedding(text_inputs(ref))  # [B, PROJ], normalised


def test_config_is_inferred_and_tokenizer_left_to_the_caller(ref):
    c = ref.config
    assert (c.text_hidden_size, c.text_layers, c.text_heads, c.text_intermediate_size) == (128, 2, 2, 256)
    assert (c.audio_patch_embeds_hidden_size, c.audio_depths, c.audio_heads) == (8, [2, 2, 2, 2], [1, 2, 2, 4])
    assert c.projection_dim == PROJ and c.tokenizer_path is None


def test_every_key_is_mapped_or_dropped_by_exactly_one_rule(ref):
    rules = [re.compile(p) for p, _ in RENAMED] + [re.compile(QKV)] + [re.compile(p) for p, _ in DROPPED]
    for key in ref.state:
        assert sum(bool(r.fullmatch(key)) for r in rules) == 1, key
    dropped = {
        k.split(".")[1] if k.startswith("audio_branch.") else k.split(".")[0]
        for k in ref.state
        if any(re.fullmatch(p, k) for p, _ in DROPPED)
    }
    assert dropped == {
        "spectrogram_extractor",
        "logmel_extractor",
        "layers",
        "tscam_conv",
        "head",
        "text_transform",
        "audio_transform",
    }  # "layers": the shifted blocks' attn_mask
    assert set(ref.converted) == set(ref.ours.state_dict())  # and load_weights (strict) took them


def test_text_embedding_equals_laion(ref):
    """Our ``get_text_features(...).pooler_output`` (normalised) vs LAION's ``get_text_embedding``. The
    converted config carries roberta-base's LayerNorm eps (1e-5; transformers' CLAP default 1e-12 gave
    8e-6 here). Measured 7e-8."""
    assert ref.config.text_layer_norm_eps == ROBERTA_BASE_EPS
    inputs = text_inputs(ref)
    with torch.no_grad():
        ours = ref.ours.get_text_features(**inputs).pooler_output
    expected = laion_text(ref)
    assert torch.allclose(ours.norm(dim=-1), torch.ones(len(CAPTIONS)))
    assert (ours - expected).abs().max().item() <= 1e-6


def test_embed_text_with_a_roberta_tokenizer_folder_equals_laion(ref):
    """ClapEmbedder end to end (our ClapTokenizer on the folder + the converted weights) vs LAION."""
    config = ClapConfig(**{**ref.config.__dict__, "tokenizer_path": str(ref.tokenizer_dir)})
    embedder = ClapEmbedder(config).eval()
    assert embedder.tokenizer.vocab_size == ref.vocab and embedder.tokenizer.pad_id == 1
    load_weights(embedder.model, ref.converted, "converted LAION-CLAP")
    with torch.no_grad():
        ours = embedder.embed_text(CAPTIONS)
    assert (ours - laion_text(ref)).abs().max().item() <= 1e-6


def test_tokenizer_ids_equal_laion_tokenization(ref):
    ids, mask = ClapTokenizer(str(ref.tokenizer_dir), max_length=77)(CAPTIONS)
    expected = text_inputs(ref)
    assert torch.equal(ids, expected["input_ids"]) and torch.equal(mask, expected["attention_mask"])
    assert ids.shape == (len(CAPTIONS), 77) and int(mask[3].sum()) == 77 and ids[3, -1] == 2  # cut, ends in </s>
    vocab = json.loads((ref.tokenizer_dir / "raw" / "vocab.json").read_text())
    assert ids[0, :6].tolist() == [0, vocab["a"], vocab["Ġdog"], vocab["Ġbarks"], 2, 1]  # <s> a dog barks </s> <pad>


def audio_waves() -> torch.Tensor:
    """Two 10 s clips at 48 kHz [2, 480000]: noise, and a tone over quieter noise."""
    g = torch.Generator().manual_seed(2)
    t = torch.arange(480000) / 48000
    noise = 0.1 * torch.randn(2, 480000, generator=g)
    return torch.stack([noise[0], 0.3 * torch.sin(2 * torch.pi * 440.0 * t) + 0.01 * noise[1]])


def laion_audio(ref: SimpleNamespace, waves: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return ref.laion.get_audio_embedding([{"waveform": w} for w in waves])  # [B, PROJ], normalised


def test_audio_embedding_from_laion_features_equals_laion(ref):
    """The weights mapping alone: our audio tower on LAION's own log-mel (torchlibrosa inside audio_branch).
    Measured 6e-8."""
    waves = audio_waves()
    branch = ref.laion.audio_branch
    with torch.no_grad():
        features = branch.logmel_extractor(branch.spectrogram_extractor(waves))  # [B, 1, 1001, 64]
        ours = ref.ours.get_audio_features(input_features=features).pooler_output
    assert (ours - laion_audio(ref, waves)).abs().max().item() <= 1e-6


def test_audio_embedding_from_waveform_equals_laion(ref):
    """End to end from a 48 kHz waveform: ClapAudioFeatures (torch.stft + torchaudio's slaney mel) vs LAION's
    torchlibrosa front-end (a conv1d DFT + librosa's mel). Same maths: periodic Hann, centred reflect padding, power
    spectrum, filterbanks equal to 2e-8, 10 log10 with a 1e-10 floor; only float32 rounding differs, most in the
    quietest bins: features differ by 8e-5 dB (noise) and 3e-3 dB (the tone), the embeddings by 6e-8 and 3e-7.
    Tolerance 1e-5: 30x the measured, 10x below the 1e-4 asked."""
    waves = audio_waves()
    with torch.no_grad():
        ours = ref.ours.get_audio_features(input_features=ClapAudioFeatures()(waves, already_resampled=True))
    diff = (ours.pooler_output - laion_audio(ref, waves)).abs().max().item()
    assert diff <= 1e-5


def test_short_clip_is_repeat_padded_as_laion(ref):
    """A 3 s clip: LAION's get_audio_features (repeatpad) and ours fill 10 s the same way."""
    wave = 0.1 * torch.randn(3 * 48000, generator=torch.Generator().manual_seed(3))
    sample = ref.get_audio_features(
        {}, wave, 480000, data_truncating="rand_trunc", data_filling="repeatpad", audio_cfg=AUDIO_CFG
    )
    assert torch.equal(ClapAudioFeatures().fit_length(wave, random_crop=False), sample["waveform"])
    with torch.no_grad():
        ours = ref.ours.get_audio_features(input_features=ClapAudioFeatures()(wave[None], already_resampled=True))
        expected = ref.laion.get_audio_embedding([sample])
    assert (ours.pooler_output - expected).abs().max().item() <= 1e-5  # measured 4e-8


def test_ddp_pt_file_and_audioldm_ckpt_prefixes(ref, tmp_path):
    state = {**ref.state, "text_branch.embeddings.position_ids": torch.arange(514)[None]}  # older transformers
    torch.save({"epoch": 1, "state_dict": {"module." + k: v for k, v in state.items()}}, tmp_path / "laion.pt")
    loaded = torch.load(tmp_path / "laion.pt", map_location="cpu", weights_only=True)
    for stripped in (strip_laion_prefix(loaded["state_dict"]), strip_laion_prefix(loaded)):
        assert stripped.keys() == state.keys()
        config, converted = clap_from_laion(stripped)
        assert config == ref.config and converted.keys() == ref.converted.keys()
        assert all(torch.equal(converted[k], ref.converted[k]) for k in converted)
    audioldm = {
        "model.diffusion_model.out.0.weight": torch.ones(2),
        "first_stage_model.encoder.conv_in.weight": torch.ones(2),
        **{"cond_stage_model.model." + k: v for k, v in ref.state.items()},
    }
    assert strip_laion_prefix(audioldm).keys() == ref.state.keys()
    with pytest.raises(CheckpointError, match="strip_laion_prefix"):
        clap_from_laion(loaded["state_dict"])


def test_missing_keys_are_listed(ref):
    state = dict(ref.state)
    del state["text_branch.pooler.dense.weight"], state["audio_branch.layers.1.blocks.1.attn.qkv.bias"]
    with pytest.raises(CheckpointError, match="2 missing keys") as e:
        clap_from_laion(state)
    assert "text_branch.pooler.dense.weight" in str(e.value)
    assert "audio_branch.layers.1.blocks.1.attn.qkv.bias" in str(e.value)


def test_unexpected_keys_are_listed(ref):
    state = {
        **ref.state,
        "audio_branch.absolute_pos_embed": torch.zeros(1, 4096, 8),
        "text_branch.extra.w": torch.ones(1),
    }
    with pytest.raises(CheckpointError, match="2 unexpected keys") as e:
        clap_from_laion(state)
    assert "audio_branch.absolute_pos_embed" in str(e.value) and "text_branch.extra.w" in str(e.value)


def test_state_of_another_model_is_refused(ref):
    with pytest.raises(CheckpointError, match="not a LAION-CLAP state dict"):
        clap_from_laion(ref.ours.state_dict())  # transformers' names
    with pytest.raises(CheckpointError, match="not a LAION-CLAP state dict"):
        clap_from_laion({"encoder.conv_in.weight": torch.ones(4, 1, 3, 3), "decoder.conv_out.bias": torch.ones(1)})


def test_fusion_checkpoints_are_refused(ref):
    fusion = {
        **ref.state,
        "audio_branch.patch_embed.mel_conv2d.weight": torch.ones(8, 1, 4, 12),
        "audio_branch.patch_embed.fusion_model.local_att.0.weight": torch.ones(2, 8, 1, 1),
    }
    with pytest.raises(CheckpointError, match="fusion CLAP checkpoints are not supported"):
        clap_from_laion(fusion)
    channel_map = {**ref.state, "audio_branch.patch_embed.proj.weight": torch.ones(8, 4, 4, 4)}
    with pytest.raises(CheckpointError, match="fusion CLAP checkpoints are not supported"):
        clap_from_laion(channel_map)


def test_vocabulary_and_front_end_mismatches_are_refused(ref):
    with pytest.raises(CheckpointError, match=f"text vocabulary .* {ref.vocab + 1} \\(needs {ref.vocab}\\)"):
        clap_from_laion(ref.state, text_vocab_size=ref.vocab + 1)
    mel = "audio_branch.logmel_extractor.melW"
    other_mel = {**ref.state, mel: ref.state[mel] * 1.01}
    with pytest.raises(CheckpointError, match="logmel_extractor.melW is not the front-end"):
        clap_from_laion(other_mel)
