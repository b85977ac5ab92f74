"""A tiny LAION-CLAP built with the original code (laion_clap 1.1.7: HTSAT + RoBERTa), seeded and
perturbed, as the reference the LAION-CLAP converter and the whole-AudioLDM tests compare against.
``roberta-base`` cannot be downloaded, so the text branch is a tiny ``RobertaModel`` with the same
structure and key names; HTSAT is built at a tiny width."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import torch
from transformers import RobertaConfig, RobertaModel, RobertaTokenizer

TEXT = dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256)  # heads = 128 / 64
HTSAT = dict(embed_dim=8, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4])
PROJ = 512  # AudioLDM's joint space (the UNet's FiLM condition is 512-d)
ROBERTA_BASE_EPS = 1e-5  # roberta-base's config.json layer_norm_eps, which LAION's RobertaModel.from_pretrained gets
AUDIO_CFG = dict(
    audio_length=1024,
    clip_samples=480000,
    mel_bins=64,
    sample_rate=48000,
    window_size=1024,
    hop_size=480,
    fmin=50,
    fmax=14000,
    class_num=527,
    model_type="HTSAT",
    model_name="tiny",
)
CAPTIONS = [
    "a dog barks",
    "Rain falls on a tin roof, then thunder!",
    "",
    " ".join(["a dog barks while the engine idles"] * 12),
]  # the last one is cut at 77 tokens


def perturb_(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Noise on every float parameter and buffer (biases, LayerNorm, running stats are not at their init values);
    bn0's running statistics set to the scale of LAION's dB features so that its input is ~unit."""
    with torch.no_grad():
        for name, t in [*module.named_parameters(), *module.named_buffers()]:
            if not t.is_floating_point() or "extractor" in name or "attn_mask" in name:
                continue
            if name.endswith("bn0.running_mean"):
                t.copy_(-30.0 + 5.0 * torch.randn(t.shape, generator=generator))
            elif name.endswith("bn0.running_var"):
                t.copy_(torch.empty(t.shape).uniform_(50.0, 150.0, generator=generator))
            else:
                t.add_(0.02 * torch.randn(t.shape, generator=generator))


def build_laion_reference(tokenizer_dir: Path) -> SimpleNamespace:
    """``laion`` (the original CLAP module, eval mode), its ``state`` dict (official key names), ``vocab``,
    ``tokenizer_dir`` and laion_clap's ``get_audio_features``."""
    import pytest

    path = list(sys.path)
    import laion_clap  # noqa: F401  (~6-11 s; appends its own folder to sys.path)

    sys.path[:] = path
    from laion_clap.clap_module import htsat
    from laion_clap.clap_module import model as laion_model
    from laion_clap.training.data import get_audio_features

    vocab = len(RobertaTokenizer.from_pretrained(tokenizer_dir))
    roberta = RobertaConfig(
        vocab_size=vocab,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=1,
        layer_norm_eps=ROBERTA_BASE_EPS,
        **TEXT,
    )

    def tiny_htsat(audio_cfg, enable_fusion=False, fusion_type="None"):
        return htsat.HTSAT_Swin_Transformer(
            spec_size=256,
            patch_size=4,
            patch_stride=(4, 4),
            window_size=8,
            num_classes=audio_cfg.class_num,
            config=audio_cfg,
            enable_fusion=enable_fusion,
            fusion_type=fusion_type,
            **HTSAT,
        )

    torch.manual_seed(0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(laion_model, "create_htsat_model", tiny_htsat)
        mp.setattr(laion_model.RobertaModel, "from_pretrained", classmethod(lambda cls, name: RobertaModel(roberta)))
        text_cfg = dict(
            context_length=77, vocab_size=vocab, width=TEXT["hidden_size"], heads=2, layers=2, model_type="roberta"
        )
        width = HTSAT["embed_dim"] * 2 ** (len(HTSAT["depths"]) - 1)
        laion = laion_model.CLAP(width, AUDIO_CFG, text_cfg, joint_embed_shape=PROJ)
    laion.text_projection = torch.nn.Sequential(
        torch.nn.Linear(TEXT["hidden_size"], PROJ), torch.nn.ReLU(), torch.nn.Linear(PROJ, PROJ)
    )
    perturb_(laion, torch.Generator().manual_seed(1))
    laion.eval()
    state = {k: v.clone() for k, v in laion.state_dict().items()}
    return SimpleNamespace(
        laion=laion, state=state, vocab=vocab, tokenizer_dir=tokenizer_dir, get_audio_features=get_audio_features
    )
