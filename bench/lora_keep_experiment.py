"""An experiment towards issue 27's "others" target (not a feature yet): train a LoRA with an extra *keep* loss that
holds the adapted UNet's output to the base's (the same UNet at adapter scale 0) under the conditions of other
captions, so the adapter may change what the new sound's prompts generate and is penalised for changing the rest.

    python bench/lora_keep_experiment.py --captions runs/lora_new_sound_birdsong/without.jsonl --weight 1.0 -- \\
        --config configs/demo/ldm_lora.yaml init_from=BASE data.train_manifest=ONLY name=keep ...

Per training step: the usual diffusion loss on the batch, plus ``weight`` x the MSE between the adapted and the base
UNet's outputs at the batch's latents noised at fresh random t, conditioned on the CLAP text embeddings of captions
drawn from ``--captions`` (a manifest; only its captions are read, no audio; captions equal to one of the benchmark's
prompts are left out). Everything after the monkeypatched ``training_step`` is train.py as it is.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def keep_captions(manifest: str, exclude: set[str]) -> list[str]:
    """Every caption of the manifest's training rows, minus ``exclude``."""
    captions = []
    with open(manifest, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row.get("split", "train") == "train":
                captions += [c for c in row.get("captions", []) if c not in exclude]
    return sorted(set(captions))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--captions", required=True, help="a manifest whose captions are the conditions to keep")
    p.add_argument("--weight", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv[:split])

    import torch
    import torch.nn.functional as F

    import train
    from audioldm.models.lora import set_scales
    from lightning_modules.ldm import LdmModule

    prompts = REPO / "data" / "demo" / "prompts.txt"  # bench/prompt_following.py's prompts: never kept
    captions = keep_captions(args.captions, {line.strip() for line in open(prompts, encoding="utf-8")})
    print(f"keep loss: {len(captions)} captions, weight {args.weight}", flush=True)
    pick = random.Random(args.seed)
    plain_step = LdmModule.training_step

    def training_step(self: LdmModule, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = plain_step(self, batch, batch_idx)
        x0, _ = self.latents_and_conditions(batch)
        b = x0.shape[0]
        condition = self.model.text_condition(pick.sample(captions, b)).to(x0)
        t = torch.randint(0, self.alphas_cumprod.shape[0], (b,), device=x0.device)
        noisy = self.add_noise(x0, torch.randn_like(x0), t)
        network = self.model.network(False)
        with torch.no_grad():
            set_scales(self.model.unet, {"default": 0.0})  # the base exactly
            target = network(noisy, t, condition)
            set_scales(self.model.unet, {"default": 1.0})
        keep = F.mse_loss(network(noisy, t, condition).float(), target.float())
        self.log("train/keep", keep, batch_size=b)
        return loss + args.weight * keep

    LdmModule.training_step = training_step
    return train.main(argv[split + 1 :])


if __name__ == "__main__":
    sys.exit(main())
