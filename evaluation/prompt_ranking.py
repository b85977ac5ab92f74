"""Does generated audio depend on its prompt? A check that needs no listening.

Every generated clip is embedded by a CLAP audio encoder and compared with the CLAP text
embeddings of all K prompts of the run; a clip counts as right when its own prompt ranks first.
Top-1 accuracy far above chance (1/K) means the sounds differ by prompt in the way CLAP hears.

    python -m evaluation.prompt_ranking --generated DIR --clap-ckpt runs/demo_clap/.../last.ckpt

DIR is a folder written by generate.py (its ``generated.jsonl`` lists each clip with its prompt).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here downloads, by design
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402


def prompt_ranking(audio: torch.Tensor, text: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """audio [N, D], text [K, D] (L2-normalised), target [N] (index of each clip's prompt) ->
    {"top1": fraction ranked first, "mean_rank": 1-based, "chance": 1 / K}."""
    similarity = audio.float() @ text.float().T  # [N, K]
    own = similarity.gather(1, target[:, None])
    ranks = (similarity > own).sum(dim=1)  # 0 = first
    return {"top1": float((ranks == 0).float().mean()), "mean_rank": float(ranks.float().mean() + 1),
            "chance": 1.0 / text.shape[0]}


@torch.no_grad()
def rank_generated(folder: str, clap_ckpt: str, device: str = "cpu") -> dict:
    """Top-1 accuracy overall and per prompt for the clips listed in ``folder/generated.jsonl``."""
    from audioldm.audio.io import load_audio
    from audioldm.audio.mel import MelConfig, normalize_waveform
    from audioldm.models.frozen_stages import load_frozen
    from data.manifest import read_manifest

    entries = read_manifest(os.path.join(folder, "generated.jsonl"))
    prompts = sorted({e.captions[0] for e in entries})
    clap, _, _ = load_frozen(clap_ckpt, "clap", MelConfig())
    clap = clap.to(device)
    text = clap.embed_text(prompts)
    audio = torch.cat([clap.embed_audio(normalize_waveform(load_audio(e.path, 16000))[None].to(device))
                       for e in entries])
    target = torch.tensor([prompts.index(e.captions[0]) for e in entries], device=device)
    result = prompt_ranking(audio, text, target)
    similarity = audio @ text.T
    per_prompt: dict[str, list[bool]] = defaultdict(list)
    for i, e in enumerate(entries):
        per_prompt[e.captions[0]].append(bool(similarity[i].argmax() == target[i]))
    result.update({"clips": len(entries), "prompts": len(prompts),
                   "per_prompt": {p: sum(v) / len(v) for p, v in sorted(per_prompt.items())}})
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generated", required=True, help="a folder written by generate.py")
    parser.add_argument("--clap-ckpt", required=True, help="a clap stage checkpoint")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    from audioldm.checkpoint import CheckpointError
    from data.manifest import ManifestError

    try:
        result = rank_generated(args.generated, args.clap_ckpt)
    except (CheckpointError, ManifestError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"prompt ranking: {result['clips']} clips, {result['prompts']} prompts: own prompt ranked first for "
          f"{result['top1']:.0%} (chance {result['chance']:.0%}), mean rank {result['mean_rank']:.2f}")
    for prompt, accuracy in result["per_prompt"].items():
        print(f"  {accuracy:4.0%}  {prompt}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
