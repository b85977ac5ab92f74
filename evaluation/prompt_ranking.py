"""Does generated audio depend on its prompt? A check that needs no listening.

Every generated clip is embedded by a CLAP audio encoder and compared with the CLAP text
embeddings of all K prompts of the run; a clip counts as right when its own prompt ranks first.
Top-1 accuracy far above chance (1/K) means the sounds differ by prompt in the way CLAP hears.

    python -m evaluation.prompt_ranking --generated DIR --clap-ckpt runs/demo_clap/.../last.ckpt

DIR is a folder written by generate.py (its ``generated.jsonl`` lists each clip with its prompt).
``--reference MANIFEST`` ranks the real clips captioned with the same prompts the same way: how well
the CLAP itself tells these prompts apart, the level to compare the generated clips with.
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
    return {
        "top1": float((ranks == 0).float().mean()),
        "mean_rank": float(ranks.float().mean() + 1),
        "chance": 1.0 / text.shape[0],
    }


@torch.no_grad()
def rank_clips(entries: list, prompts: list[str], clap, device: str = "cpu") -> dict:
    """Top-1 accuracy overall and per prompt for manifest entries whose first matching caption
    (one of ``prompts``) is their own prompt."""
    from audioldm.audio.io import load_audio
    from audioldm.audio.mel import normalize_waveform

    own = [next(c for c in e.captions if c in prompts) for e in entries]
    text = clap.embed_text(prompts)
    audio = torch.cat(
        [clap.embed_audio(normalize_waveform(load_audio(e.path, 16000))[None].to(device)) for e in entries]
    )
    target = torch.tensor([prompts.index(p) for p in own], device=device)
    result = prompt_ranking(audio, text, target)
    first = (audio @ text.T).argmax(dim=1) == target
    per_prompt: dict[str, list[bool]] = defaultdict(list)
    for p, ok in zip(own, first.tolist()):
        per_prompt[p].append(ok)
    result.update(
        {
            "clips": len(entries),
            "prompts": len(prompts),
            "per_prompt": {p: sum(v) / len(v) for p, v in sorted(per_prompt.items())},
        }
    )
    return result


def rank_generated(folder: str, clap_ckpt: str, reference: str | None = None, device: str = "cpu") -> dict:
    """Rank the clips of ``folder/generated.jsonl``; with ``reference`` (a manifest), also the real
    clips captioned with one of the same prompts: CLAP's own accuracy, the level to compare with."""
    from audioldm.assembly.parts import load_part
    from audioldm.audio.mel import MelConfig
    from data.manifest import read_manifest

    entries = read_manifest(os.path.join(folder, "generated.jsonl"))
    prompts = sorted({e.captions[0] for e in entries})
    clap = load_part(clap_ckpt, "clap", MelConfig()).network.to(device)
    result = rank_clips(entries, prompts, clap, device)
    if reference:
        real = [e for e in read_manifest(reference) if any(c in prompts for c in e.captions)]
        result["reference"] = rank_clips(real, prompts, clap, device) if real else None
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generated", required=True, help="a folder written by generate.py")
    parser.add_argument("--clap-ckpt", required=True, help="a clap stage checkpoint")
    parser.add_argument("--reference", help="a manifest of real clips: rank those captioned with the same prompts too")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    from audioldm.checkpoint import CheckpointError
    from data.manifest import ManifestError

    try:
        result = rank_generated(args.generated, args.clap_ckpt, args.reference)
    except (CheckpointError, ManifestError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"prompt ranking: {result['clips']} clips, {result['prompts']} prompts: own prompt ranked first for "
        f"{result['top1']:.0%} (chance {result['chance']:.0%}), mean rank {result['mean_rank']:.2f}"
    )
    for prompt, accuracy in result["per_prompt"].items():
        print(f"  {accuracy:4.0%}  {prompt}")
    reference = result.get("reference")
    if reference:
        print(
            f"reference: {reference['clips']} real clips with these captions: own prompt first for "
            f"{reference['top1']:.0%}, mean rank {reference['mean_rank']:.2f} (what this CLAP manages on real audio)"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
