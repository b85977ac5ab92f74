#!/usr/bin/env bash
# A new sound taught from a few clips (issue 27): the demo LDM's recipe trained without one class (tabla), then
# fine-tuned on that class's 14 clips alone with (a) the shipped LoRA and (b) the whole UNet, at equal steps; each
# scored by bench/prompt_following.py (top-1 of every demo prompt from text). Needs the demo run's stage checkpoints
# and pre-encoded latents (bash scripts/demo.sh). HELD=airplane SUFFIX=_airplane holds out another class. Results:
# bench/results/prompt_following-cpu-lora<SUFFIX>-<row>-<CLIPS>clips-<date>.json, gathered by
# bench/lora.py --demo-clips 18.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY=.venv/bin/python
HELD=${HELD:-tabla}
STEPS=${STEPS:-200}
CLIPS=${CLIPS:-18}
work=runs/lora_new_sound${SUFFIX:-}
mkdir -p "$work"
$PY - "$HELD" "$work" <<'PYEOF'
import json, random, sys
held, work = sys.argv[1], sys.argv[2]
rows = [json.loads(line) for line in open("demo_data/manifest.jsonl", encoding="utf-8")]
with open(f"{work}/without.jsonl", "w", encoding="utf-8") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows if held not in r.get("labels", []))
only = [{**r, "split": "train"} for r in rows if held in r.get("labels", [])]
with open(f"{work}/only.jsonl", "w", encoding="utf-8") as f:
    f.writelines(json.dumps(r) + "\n" for r in only)
# rehearsal (bench/lora_variant.sh with MANIFEST=only_replay.jsonl): as many of the base's own training clips again
others = [r for r in rows if held not in r.get("labels", []) and r.get("split") == "train"]
with open(f"{work}/only_replay.jsonl", "w", encoding="utf-8") as f:
    f.writelines(json.dumps(r) + "\n" for r in only + random.Random(0).sample(others, len(only)))
PYEOF
stages=(model.vae_ckpt=runs/demo_vae/version_0/checkpoints/last.ckpt
        model.clap_ckpt=runs/demo_clap/version_0/checkpoints/last.ckpt
        model.vocoder_ckpt=runs/demo_vocoder/version_0/checkpoints/last.ckpt)
quiet=(trainer.check_val_every_n_epoch=100000 output_dir=$work)
newest() { ls -d "$work/$1"/version_* | sort -V | tail -n 1; }
# the base: the demo LDM's recipe without the held-out class
$PY train.py --config configs/demo/ldm.yaml "${stages[@]}" data.train_manifest=$work/without.jsonl name=base "${quiet[@]}"
# (a) the shipped LoRA (configs/demo/ldm_lora.yaml: rank 8 on the attention projections and the res blocks' convs,
# lr 1e-3), (b) the whole UNet (lr 1e-4): the same steps, clips, warm-up (20) and cosine decay; each row scored by
# bench/lora_variant.sh (CLIPS clips a prompt). More recipes: bench/lora_variant.sh NAME key=value ...
for row in base lora full; do
  STEPS=$STEPS CLIPS=$CLIPS bash bench/lora_variant.sh $row
done
echo "lora_new_sound: done ($work)"
