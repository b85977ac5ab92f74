"""What every checkpoint format shares: a read weights file or folder (``Source``), what a format reads of one
network (``NetworkWeights``), and the readers of files, folders and JSON they all use.

A format module (one per layout, listed in ``registry.py``) has the same small interface:

    NAME: str                                    # as messages and ``convert.py`` name it
    DESCRIPTION: str                             # what it is, for the error that lists every format
    detect(source) -> str | None                 # the kind of source it recognises (None: not this format)
    parts(source) -> tuple[str, ...]             # the networks it holds: "unet", "vae", "clap", "vocoder",
                                                 # "text_encoder" (the T5 of model.condition crossattn_t5)
    read(source, part, options) -> NetworkWeights
    write(...)                                   # only where the format is written (ours, diffusers)

``read`` gives the config that rebuilds the network and a state dict that loads strictly into it: for the UNet
a ``UnetConfig`` and its raw and EMA weight sets; for the VAE, CLAP and vocoder the experiment config (a plain
dict) of the stage that trains that network, which ``audioldm.assembly.build_part`` turns into the network; for
the T5 text encoder its part config (``audioldm.models.text_encoder``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from audioldm.audio.mel import MelConfig
from audioldm.checkpoint import CheckpointError, load_torch_file

NETWORKS = ("unet", "vae", "clap", "vocoder", "text_encoder")  # what a source may hold (parts(): those it does)
AUDIOLDM_NETWORKS = ("unet", "vae", "clap", "vocoder")  # a whole AudioLDM 1 (FiLM on CLAP)


@dataclass
class Source:
    """A read weights source: ``raw`` for files (the whole loaded object), ``folder`` for folders; ``format`` and
    ``kind`` are set by the registry (the format module, and what of that format it is)."""

    path: str
    raw: Any = None
    folder: Path | None = None
    format: Any = None
    kind: str = ""
    state: dict[str, torch.Tensor] = field(default_factory=dict)  # a file's flat tensor state dict

    @property
    def name(self) -> str:
        """``format`` or ``format (kind)`` as messages show it."""
        return f"{self.format.NAME} ({self.kind})" if self.kind else self.format.NAME


@dataclass
class ReadOptions:
    """What a reader may need beyond the weights: the mel settings the networks are for (None: the source's own,
    which our checkpoints record and other formats have as AudioLDM's), a tokenizer folder (RoBERTa for LAION-CLAP
    text, T5's for a T5 text encoder), the UNet's attention head width (an original .ckpt does not record it) and
    the T5's caption length in tokens."""

    mel: MelConfig | None = None
    tokenizer: str | None = None
    head_channels: int | None = None
    text_max_length: int = 128

    @property
    def foreign_mel(self) -> MelConfig:
        """The mel settings a network of another format is used with: ``mel``, else AudioLDM's."""
        return self.mel or MelConfig()


@dataclass
class NetworkWeights:
    """One network of a source. ``config``: a ``UnetConfig`` (UNet), else the stage config dict that rebuilds
    the network (None: a vocoder-less LDM of ours, which renders with Griffin-Lim). ``state`` loads strictly into
    the network; ``ema``: the UNet's EMA set where the format keeps one; ``scale_factor``: the VAE's latent scale;
    ``mel``: the audio settings the source's networks were made for."""

    config: Any
    state: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor] | None = None
    scale_factor: torch.Tensor | None = None
    mel: MelConfig | None = None


def stage_config(stage: str, model: Any, mel: MelConfig, source: str) -> dict:
    """The experiment config dict of a stage whose weights were converted from ``source``."""
    name = f"converted_{stage}_from_{Path(source).name}"
    return {"stage": stage, "name": name, "audio": asdict(mel), "model": asdict(model), "data": {"train_manifest": ""}}


def holds_no(source: Source, part: str) -> CheckpointError:
    return CheckpointError(f"{source.path}: a '{source.name}' source holds no {'UNet' if part == 'unet' else part}")


def read_file(path: str) -> Any:
    """A torch file (``load_torch_file``) or a .safetensors file."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except Exception as e:  # truncated header, not safetensors
            raise CheckpointError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e})") from None
    return load_torch_file(path)


def read_folder_weights(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor in a diffusers/transformers model folder's weight files (``*.safetensors``, else
    ``*.bin``; sharded files included), read directly so that a missing key is reported, not re-initialised."""
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    if not files:
        raise CheckpointError(f"{folder}: no *.safetensors or *.bin weight files")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        loaded = read_file(str(file))
        state.update(loaded.get("state_dict", loaded) if isinstance(loaded, dict) else {})
    return state


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not readable JSON ({str(e).splitlines()[0]})") from None


def folder_config(folder: Path, what: str) -> dict:
    """A model folder's ``config.json``; raises naming ``what`` the folder should hold."""
    if not (folder / "config.json").is_file():
        raise CheckpointError(f"{folder}: no config.json ({what} folder expected)")
    return read_json(folder / "config.json")


def tokenizer_for(source: Source, tokenizer: str | None, default: str | None = None) -> str:
    """The RoBERTa tokenizer folder LAION-CLAP text weights need (``tokenizer``, else ``default``), absolute."""
    tokenizer = tokenizer or default
    if not tokenizer:
        raise CheckpointError(
            f"{source.path}: LAION-CLAP text weights need their RoBERTa tokenizer: pass --tokenizer "
            f"DIR (a folder with vocab.json and merges.txt, e.g. the tokenizer/ folder of a diffusers "
            f"AudioLDM download, or roberta-base saved locally)"
        )
    if not os.path.isdir(tokenizer):
        raise CheckpointError(f"tokenizer folder not found: {tokenizer}")
    return os.path.abspath(tokenizer)  # the stage config keeps it: valid from any working directory


def prefixed(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """``state`` with ``prefix`` before every key (a sub-network's weights under its parent's name)."""
    return {prefix + k: v for k, v in state.items()}


def with_text_length(tokenizer, max_length: int):
    """``tokenizer`` with ``model_max_length`` = ``max_length`` when it has none of its own (transformers' huge
    sentinel, as a folder of vocab.json + merges.txt gives): diffusers' AudioLDMPipeline pads to it."""
    if not tokenizer.model_max_length or tokenizer.model_max_length > 100_000:
        tokenizer.model_max_length = max_length
    return tokenizer


def t5_part_config(hf_config: dict, tokenizer: str | None, max_length: int, source: Source) -> dict:
    """The part config of a T5 text encoder (``audioldm.models.text_encoder``); the tokenizer folder is kept as an
    absolute path (it must exist: T5 captions cannot be tokenized without it)."""
    if not tokenizer:
        raise CheckpointError(
            f"{source.path}: its T5 text encoder needs the T5 tokenizer: pass --tokenizer DIR (a local folder saved "
            f"from google/flan-t5-large's tokenizer)"
        )
    if not os.path.isdir(tokenizer):
        raise CheckpointError(f"tokenizer folder not found: {tokenizer}")
    keep = ("architectures", "transformers_version", "_name_or_path", "torch_dtype", "dtype")
    hf = {k: v for k, v in hf_config.items() if k not in keep}
    return {"encoder": "t5", "hf_config": hf, "tokenizer": os.path.abspath(tokenizer), "max_length": max_length}


def t5_encoder_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A T5's encoder weights (``shared.*`` and ``encoder.*``; a whole T5's decoder dropped) as
    ``T5EncoderModel`` names them, under our part's ``model.`` prefix."""
    kept = {k: v for k, v in state.items() if k.startswith(("shared.", "encoder."))}
    if "shared.weight" in kept:
        kept.setdefault("encoder.embed_tokens.weight", kept["shared.weight"])
    return prefixed(kept, "model.")
