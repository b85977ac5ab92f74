"""LAION-CLAP weights (non-fusion HTSAT audio branch + RoBERTa text branch) -> transformers ``ClapModel``,
the network inside our ``ClapEmbedder`` (``ClapEmbedder(config).model``).

    config, state = clap_from_laion(strip_laion_prefix(torch.load("630k-audioset-best.pt")["state_dict"]))
    config.tokenizer_path = "roberta-tokenizer/"    # the caller's RoBERTa tokenizer folder (see below)
    load_weights(ClapEmbedder(config).model, state, "clap")

Input: a LAION-CLAP state dict with LAION's own names (``laion_clap`` 1.1.7, ``CLAP(...).state_dict()``). The
original AudioLDM ``.ckpt`` holds the same module tree under ``cond_stage_model.model.`` (AudioLDM vendors
LAION's open_clip code; its module and parameter names are identical to laion_clap 1.1.7's), and LAION's ``.pt``
files hold it under ``module.`` (DDP): ``strip_laion_prefix`` removes either.

Key mapping, rule by rule (``{i}`` a stage or layer index, ``{j}`` a block index; ``A.`` stands for
``audio_model.audio_encoder.``; ``*`` is ``weight``/``bias``):

- ``logit_scale_a``, ``logit_scale_t`` -> the same names.
- ``text_branch.X`` -> ``text_model.X`` for X in ``embeddings.{word,position,token_type}_embeddings.weight``,
  ``embeddings.LayerNorm.*``, ``encoder.layer.{i}.{attention.self.query, attention.self.key, attention.self.value,
  attention.output.dense, attention.output.LayerNorm, intermediate.dense, output.dense, output.LayerNorm}.*`` and
  ``pooler.dense.*`` (transformers' ClapText is RoBERTa; LAION embeds RoBERTa's ``pooler_output``).
- ``{text,audio}_projection.0.*`` -> ``{text,audio}_projection.linear1.*``; ``….2.*`` -> ``….linear2.*``
  (``.1`` is the ReLU).
- ``audio_branch.bn0.{weight,bias,running_mean,running_var,num_batches_tracked}`` -> ``A.batch_norm.…``.
- ``audio_branch.patch_embed.{proj,norm}.*`` -> ``A.patch_embed.{proj,norm}.*``.
- ``audio_branch.layers.{i}.blocks.{j}.`` + ``norm1`` / ``attn.proj`` / ``norm2`` / ``mlp.fc1`` / ``mlp.fc2`` ``.*``
  -> ``A.layers.{i}.blocks.{j}.`` + ``layernorm_before`` / ``attention.output.dense`` / ``layernorm_after`` /
  ``intermediate.dense`` / ``output.dense`` ``.*``.
- ``audio_branch.layers.{i}.blocks.{j}.attn.qkv.weight`` [3C, C] (``.bias`` [3C]) -> split in row thirds into
  ``A.layers.{i}.blocks.{j}.attention.self.{query,key,value}.weight`` [C, C] (``.bias`` [C]): HTSAT reshapes the
  fused output as (3, heads, C / heads), so rows [0, C) are q, [C, 2C) k, [2C, 3C) v, each head-major as in
  transformers.
- ``audio_branch.layers.{i}.blocks.{j}.attn.relative_position_{bias_table,index}``
  -> ``A.layers.{i}.blocks.{j}.attention.self.relative_position_{bias_table,index}`` (same Swin formula).
- ``audio_branch.layers.{i}.downsample.{reduction.weight,norm.*}`` -> ``A.layers.{i}.downsample.…``.
- ``audio_branch.norm.*`` -> ``A.norm.*``.
- made, not mapped: ``text_model.embeddings.position_ids`` = arange(P) and ``…token_type_ids`` = zeros, [1, P]
  (P = rows of the position table), constant buffers transformers saves.

Dropped, each by an explicit rule (``DROPPED``); any other key raises ``CheckpointError`` listing the unexpected keys:

- ``audio_branch.spectrogram_extractor.stft.conv_{real,imag}.weight`` [513, 1, 1024] and
  ``audio_branch.logmel_extractor.melW`` [513, 64]: torchlibrosa's frozen front-end (DFT kernels of the Hann-windowed
  1024-point STFT; librosa's slaney mel filterbank, 48 kHz, 64 bins, 50-14000 Hz). ``ClapAudioFeatures`` computes
  the same log-mel with ``torch.stft`` and torchaudio's filterbank, so these are checked against ours (shape, and
  values to 1e-6) and then dropped; a checkpoint trained on another front-end raises instead.
- ``audio_branch.layers.{i}.blocks.{j}.attn_mask``: the shifted-window masks, a buffer computed from the input
  resolution; transformers builds them on the fly.
- ``audio_branch.tscam_conv.*``, ``audio_branch.head.*``: HTSAT's AudioSet classification head (token-semantic
  CAM); it makes ``clipwise_output``/``framewise_output``, never the ``embedding`` CLAP uses.
- ``text_transform.*``, ``audio_transform.*``: the MLPs LAION applies to the normalised embeddings inside its
  training loss only (``get_text_embedding``/``get_audio_embedding`` never use them).
- ``text_branch.embeddings.position_ids``, ``text_branch.embeddings.token_type_ids``: constant buffers (arange,
  zeros) that older transformers saved; made afresh for the target.

Not supported (``CheckpointError``): fusion CLAP checkpoints (``…fusion_model.*``, ``…mel_conv2d.*``,
``…mel_conv1d.*``, a 4-channel ``patch_embed.proj``), PANN audio branches, and text branches other than RoBERTa
(BERT, BART, the CLIP transformer). AudioLDM uses the non-fusion HTSAT-tiny + roberta-base model.

The config is inferred from the shapes: text width/layers/intermediate size, heads = width / 64 (RoBERTa's
64-wide heads: base 12, large 16; the count is in no tensor), HTSAT width/depths, heads per stage (the columns of
``relative_position_bias_table``), projection size. What transformers' ``ClapAudioConfig`` fixes and the
``ClapConfig`` cannot say is checked instead: window 8, 4x4 patches on one channel, 64 mel bins, MLP ratio 4,
one token type, a 514-row position table (= ``hf_config``'s for 77 tokens and RoBERTa's padding id 1). The
projection heads' activation (LAION's ``mlp_act``) is not in the weights: ReLU is assumed, LAION's default
(``create_model`` and ``CLAP_Module`` never change it) and transformers' ``projection_hidden_act``.

Tokenizer: ``ClapEmbedder`` builds its tokenizer from ``config.tokenizer_path``; LAION weights need a RoBERTa
tokenizer folder there (``roberta-base``'s: vocabulary 50265, padding id 1, whose size must equal the embedding
table's rows). The weights do not carry it, so ``clap_from_laion`` leaves ``tokenizer_path=None`` and the caller
must fill it in (``None`` would build open_clip's BPE tokenizer, whose vocabulary does not fit).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

import torch

from audioldm.checkpoint import CheckpointError
from audioldm.models.clap import ClapConfig

LAION_PREFIXES = ("cond_stage_model.model.", "module.")
FUSION_MARKERS = (".fusion_model.", ".mel_conv2d.", ".mel_conv1d.")
HF_WINDOW, HF_PATCH, HF_MEL_BINS, HF_MLP_RATIO = 8, 4, 64, 4  # transformers ClapAudioConfig defaults (as LAION)
N_FFT, SAMPLE_RATE, F_MIN, F_MAX = 1024, 48000, 50.0, 14000.0  # LAION's HTSAT front-end
ROBERTA_LAYER_NORM_EPS = 1e-5  # roberta-base's config, which LAION's text branch is built from
ATOL_FRONT_END = 1e-6  # float32 kernels/filters vs ours: measured 3e-8
A = "audio_model.audio_encoder."

_TEXT_LAYER_PARTS = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "attention.output.LayerNorm",
    "intermediate.dense",
    "output.dense",
    "output.LayerNorm",
)
_BLOCK_PARTS = {
    "norm1": "layernorm_before",
    "attn.proj": "attention.output.dense",
    "norm2": "layernorm_after",
    "mlp.fc1": "intermediate.dense",
    "mlp.fc2": "output.dense",
}
_WB = r"(weight|bias)"
_BLOCK = r"audio_branch\.layers\.(\d+)\.blocks\.(\d+)\."

# (LAION key pattern, ClapModel key template); each LAION key must match exactly one rule here or in DROPPED
RENAMED: list[tuple[str, str]] = [
    (r"logit_scale_(a|t)", r"logit_scale_\1"),
    (r"text_branch\.embeddings\.((?:word|position|token_type)_embeddings\.weight)", r"text_model.embeddings.\1"),
    (rf"text_branch\.embeddings\.LayerNorm\.{_WB}", r"text_model.embeddings.LayerNorm.\1"),
    (
        rf"text_branch\.encoder\.layer\.(\d+)\.({'|'.join(map(re.escape, _TEXT_LAYER_PARTS))})\.{_WB}",
        r"text_model.encoder.layer.\1.\2.\3",
    ),
    (rf"text_branch\.pooler\.dense\.{_WB}", r"text_model.pooler.dense.\1"),
    (rf"(text|audio)_projection\.0\.{_WB}", r"\1_projection.linear1.\2"),
    (rf"(text|audio)_projection\.2\.{_WB}", r"\1_projection.linear2.\2"),
    (r"audio_branch\.bn0\.(weight|bias|running_mean|running_var|num_batches_tracked)", A + r"batch_norm.\1"),
    (rf"audio_branch\.patch_embed\.(proj|norm)\.{_WB}", A + r"patch_embed.\1.\2"),
    *[(rf"{_BLOCK}{re.escape(ours)}\.{_WB}", A + rf"layers.\1.blocks.\2.{hf}.\3") for ours, hf in _BLOCK_PARTS.items()],
    (
        rf"{_BLOCK}attn\.(relative_position_bias_table|relative_position_index)",
        A + r"layers.\1.blocks.\2.attention.self.\3",
    ),
    (
        r"audio_branch\.layers\.(\d+)\.downsample\.(reduction\.weight|norm\.weight|norm\.bias)",
        A + r"layers.\1.downsample.\2",
    ),
    (rf"audio_branch\.norm\.{_WB}", A + r"norm.\1"),
]
QKV = rf"{_BLOCK}attn\.qkv\.{_WB}"  # split into query/key/value
# (LAION key pattern, why it has no counterpart)
DROPPED: list[tuple[str, str]] = [
    (r"audio_branch\.spectrogram_extractor\.stft\.conv_(real|imag)\.weight", "torchlibrosa STFT kernels (checked)"),
    (r"audio_branch\.logmel_extractor\.melW", "torchlibrosa mel filterbank (checked)"),
    (rf"{_BLOCK}attn_mask", "shifted-window mask buffer (transformers computes it)"),
    (rf"audio_branch\.(tscam_conv|head)\.{_WB}", "HTSAT AudioSet classification head (not in the embedding path)"),
    (rf"(text|audio)_transform\.sequential\.\d+\.{_WB}", "training-loss MLP on the embeddings"),
    (r"text_branch\.embeddings\.(position_ids|token_type_ids)", "constant buffer (made afresh)"),
]
_RENAMED = [(re.compile(p), t) for p, t in RENAMED]
_QKV = re.compile(QKV)
_DROPPED = [re.compile(p) for p, _ in DROPPED]


def strip_laion_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """LAION-CLAP keys with LAION's own names, from a state dict (or a ``{"state_dict": ...}`` checkpoint) whose
    keys carry ``cond_stage_model.model.`` (an original AudioLDM .ckpt: only those entries are kept, the rest is
    the diffusion model, VAE, ...) or ``module.`` (a DDP-saved LAION .pt). Other states are returned as they are."""
    if isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    for prefix in LAION_PREFIXES:
        if any(k.startswith(prefix) for k in state):
            if prefix == "module." and not all(k.startswith(prefix) for k in state):
                break  # mixed: leave it to clap_from_laion to list what it does not know
            return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    return dict(state)


def clap_from_laion(
    state: Mapping[str, torch.Tensor], text_vocab_size: int | None = None
) -> tuple[ClapConfig, dict[str, torch.Tensor]]:
    """(config, ``ClapModel`` state dict) from a LAION-CLAP state dict with LAION's names (see the module docstring).

    ``text_vocab_size``: the tokenizer's vocabulary size, checked against the word embedding table when given.
    The config's ``tokenizer_path`` stays ``None``: set it to a RoBERTa tokenizer folder before building a
    ``ClapEmbedder``. The state loads strictly into ``ClapModel(hf_config(config, vocab, pad_id=1))``.
    """
    _check_kind(state)
    config = _infer_config(state)
    _check_fixed_architecture(state, config, text_vocab_size)
    out: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for key, value in state.items():
        if any(p.fullmatch(key) for p in _DROPPED):
            continue
        qkv = _QKV.fullmatch(key)
        if qkv:
            stage, block, kind = qkv.groups()
            for name, part in zip(("query", "key", "value"), value.chunk(3, dim=0)):  # [3C, ...] -> 3 x [C, ...]
                out[f"{A}layers.{stage}.blocks.{block}.attention.self.{name}.{kind}"] = part.clone()
            continue
        target = next((p.sub(t, key) for p, t in _RENAMED if p.fullmatch(key)), None)
        if target is None:
            unexpected.append(key)
        else:
            out[target] = value
    if unexpected:
        raise CheckpointError(
            f"LAION-CLAP state dict: {len(unexpected)} unexpected keys that no rule maps or drops "
            f"({_listed(unexpected)})"
        )
    positions = state["text_branch.embeddings.position_embeddings.weight"].shape[0]
    out["text_model.embeddings.position_ids"] = torch.arange(positions).unsqueeze(0)  # [1, P]
    out["text_model.embeddings.token_type_ids"] = torch.zeros(1, positions, dtype=torch.long)  # [1, P]
    return config, out


# -- checks and inference ----------------------------------------------------------------------
def _listed(keys: list[str], n: int = 12) -> str:
    return ", ".join(keys[:n]) + (f", ... ({len(keys) - n} more)" if len(keys) > n else "")


def _check_kind(state: Mapping[str, torch.Tensor]) -> None:
    """Raise unless ``state`` is a non-fusion LAION-CLAP (HTSAT + RoBERTa) state dict with LAION's names."""
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError("LAION-CLAP: expected a flat state dict of tensors")
    keys = list(state)
    fusion = [k for k in keys if any(m in k for m in FUSION_MARKERS)]
    proj = state.get("audio_branch.patch_embed.proj.weight")
    if fusion or (proj is not None and proj.ndim == 4 and proj.shape[1] == 4):
        raise CheckpointError(
            f"fusion CLAP checkpoints are not supported, only non-fusion ones as AudioLDM uses "
            f"(found the fusion modules {_listed(fusion or ['audio_branch.patch_embed.proj'], 4)})"
        )
    if not any(k.startswith(("text_branch.", "audio_branch.")) for k in keys):
        hint = "; remove the prefix with strip_laion_prefix" if any(k.startswith(LAION_PREFIXES) for k in keys) else ""
        raise CheckpointError(
            f"not a LAION-CLAP state dict: no text_branch.* / audio_branch.* keys (first keys: {keys[:5]}){hint}"
        )
    if any(k.startswith("audio_branch.conv_block1.") for k in keys):
        raise CheckpointError("a LAION-CLAP with a PANN audio branch: only HTSAT audio branches are supported")
    other_text = [
        k for k in keys if k.startswith(("text_branch.resblocks.", "text_branch.shared.", "token_embedding."))
    ]
    if other_text:
        raise CheckpointError(
            f"a LAION-CLAP whose text branch is not RoBERTa ({other_text[0]}, ...): only "
            f"RoBERTa text branches are supported"
        )


def _count(keys: list[str], pattern: str) -> int:
    """1 + the largest integer that fills ``(\\d+)`` in ``pattern`` (a prefix) over ``keys``; 0 if none does."""
    rx = re.compile(pattern)
    return 1 + max((int(m.group(1)) for k in keys if (m := rx.match(k))), default=-1)


def _required_keys(n_text: int, depths: list[int]) -> list[str]:
    """Every LAION key the conversion needs, for ``n_text`` text layers and HTSAT ``depths``."""
    wb = ("weight", "bias")
    keys = [
        "logit_scale_a",
        "logit_scale_t",
        "text_branch.embeddings.word_embeddings.weight",
        "text_branch.embeddings.position_embeddings.weight",
        "text_branch.embeddings.token_type_embeddings.weight",
        *[f"text_branch.embeddings.LayerNorm.{s}" for s in wb],
    ]
    keys += [
        f"text_branch.encoder.layer.{i}.{part}.{s}" for i in range(n_text) for part in _TEXT_LAYER_PARTS for s in wb
    ]
    keys += [f"text_branch.pooler.dense.{s}" for s in wb]
    keys += [f"{t}_projection.{n}.{s}" for t in ("text", "audio") for n in (0, 2) for s in wb]
    keys += [f"audio_branch.bn0.{s}" for s in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")]
    keys += [f"audio_branch.patch_embed.{m}.{s}" for m in ("proj", "norm") for s in wb]
    for i, depth in enumerate(depths):
        for j in range(depth):
            block = f"audio_branch.layers.{i}.blocks.{j}."
            keys += [block + p for p in ("attn.relative_position_bias_table", "attn.relative_position_index")]
            keys += [f"{block}{p}.{s}" for p in ("norm1", "attn.qkv", *list(_BLOCK_PARTS)[1:]) for s in wb]
        if i < len(depths) - 1:
            keys += [
                f"audio_branch.layers.{i}.downsample.{p}" for p in ("reduction.weight", "norm.weight", "norm.bias")
            ]
    keys += [f"audio_branch.norm.{s}" for s in wb]
    return keys


def _infer_config(state: Mapping[str, torch.Tensor]) -> ClapConfig:
    """The ``ClapConfig`` the shapes say; raises listing the missing keys first."""
    keys = list(state)
    n_text = _count(keys, r"text_branch\.encoder\.layer\.(\d+)\.")
    depths = [
        _count(keys, rf"audio_branch\.layers\.{i}\.blocks\.(\d+)\.")
        for i in range(_count(keys, r"audio_branch\.layers\.(\d+)\."))
    ]
    missing = [k for k in _required_keys(n_text, depths) if k not in state]
    if n_text == 0:
        missing.insert(0, "text_branch.encoder.layer.0.*")
    if not depths or 0 in depths:
        missing.insert(0, "audio_branch.layers.{i}.blocks.0.*")
    if missing:
        raise CheckpointError(f"LAION-CLAP state dict: {len(missing)} missing keys ({_listed(missing)})")
    hidden = state["text_branch.embeddings.word_embeddings.weight"].shape[1]
    if hidden % 64:
        raise CheckpointError(f"LAION-CLAP text width {hidden} is not a multiple of RoBERTa's 64-wide heads")
    heads = [
        state[f"audio_branch.layers.{i}.blocks.0.attn.relative_position_bias_table"].shape[1]
        for i in range(len(depths))
    ]
    return ClapConfig(
        projection_dim=state["audio_projection.2.weight"].shape[0],
        tokenizer_path=None,
        text_hidden_size=hidden,
        text_layers=n_text,
        text_heads=hidden // 64,
        text_layer_norm_eps=ROBERTA_LAYER_NORM_EPS,
        text_intermediate_size=state["text_branch.encoder.layer.0.intermediate.dense.weight"].shape[0],
        audio_patch_embeds_hidden_size=state["audio_branch.patch_embed.proj.weight"].shape[0],
        audio_depths=depths,
        audio_heads=heads,
    )


def _check_fixed_architecture(state: Mapping[str, torch.Tensor], config: ClapConfig, vocab: int | None) -> None:
    """Raise where the weights need something transformers' CLAP config (as ``hf_config`` builds it) cannot be."""

    def shape(key: str) -> tuple[int, ...]:
        return tuple(state[key].shape)

    problems = []

    def expect(what: str, found: object, wanted: object) -> None:
        if found != wanted:
            problems.append(f"{what} {found} (needs {wanted})")

    expect("patch_embed.proj kernel", shape("audio_branch.patch_embed.proj.weight")[1:], (1, HF_PATCH, HF_PATCH))
    expect("mel bins (bn0)", shape("audio_branch.bn0.weight"), (HF_MEL_BINS,))
    expect(
        "relative position table rows",
        shape("audio_branch.layers.0.blocks.0.attn.relative_position_bias_table")[0],
        (2 * HF_WINDOW - 1) ** 2,
    )
    width = config.audio_patch_embeds_hidden_size
    expect("HTSAT MLP width", shape("audio_branch.layers.0.blocks.0.mlp.fc1.weight")[0], HF_MLP_RATIO * width)
    expect("audio projection input", shape("audio_projection.0.weight")[1], width * 2 ** (len(config.audio_depths) - 1))
    expect("text projection size", shape("text_projection.2.weight")[0], config.projection_dim)
    expect("text projection input", shape("text_projection.0.weight")[1], config.text_hidden_size)
    expect("token types", shape("text_branch.embeddings.token_type_embeddings.weight")[0], 1)
    expect(
        "position table rows",
        shape("text_branch.embeddings.position_embeddings.weight")[0],
        max(514, config.max_text_length + 1 + 2),
    )  # hf_config's, with RoBERTa's padding id 1
    if vocab is not None:
        expect("text vocabulary (the tokenizer's)", vocab, shape("text_branch.embeddings.word_embeddings.weight")[0])
    if problems:
        raise CheckpointError(f"LAION-CLAP state dict does not fit transformers' CLAP: {'; '.join(problems)}")
    _check_front_end(state)


def _check_front_end(state: Mapping[str, torch.Tensor]) -> None:
    """The torchlibrosa STFT kernels and mel filterbank (when present) must be the ones ``ClapAudioFeatures`` uses."""
    from audioldm.models.clap_features import ClapAudioFeatures

    expected: dict[str, Callable[[], torch.Tensor]] = {
        "audio_branch.spectrogram_extractor.stft.conv_real.weight": lambda: _dft(torch.cos),
        "audio_branch.spectrogram_extractor.stft.conv_imag.weight": lambda: -_dft(torch.sin),
        "audio_branch.logmel_extractor.melW": lambda: (
            ClapAudioFeatures(rate=SAMPLE_RATE, n_fft=N_FFT, n_mels=HF_MEL_BINS, f_min=F_MIN, f_max=F_MAX).mel_basis
        ),
    }
    for key, make in expected.items():
        if key not in state:
            continue
        found, wanted = state[key].float(), make().float()
        if found.shape != wanted.shape or not torch.allclose(found, wanted, rtol=0.0, atol=ATOL_FRONT_END):
            detail = (
                f"shape {tuple(found.shape)} vs {tuple(wanted.shape)}"
                if found.shape != wanted.shape
                else f"max abs diff {(found - wanted).abs().max().item():.2e}"
            )
            raise CheckpointError(
                f"LAION-CLAP {key} is not the front-end ClapAudioFeatures computes (48 kHz, "
                f"n_fft {N_FFT}, Hann, 64 slaney mel bins 50-14000 Hz): {detail}"
            )


def _dft(trig: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """torchlibrosa's windowed DFT kernels, [N_FFT // 2 + 1, 1, N_FFT]: trig(2 pi k n / N) * hann(n)."""
    k = torch.arange(N_FFT // 2 + 1, dtype=torch.float64)[:, None]
    n = torch.arange(N_FFT, dtype=torch.float64)[None]
    return (trig(2 * math.pi * k * n / N_FFT) * torch.hann_window(N_FFT, dtype=torch.float64)).unsqueeze(1)
