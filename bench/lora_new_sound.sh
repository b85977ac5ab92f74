#!/usr/bin/env bash
# A new sound taught from a few clips (issue 27): the demo LDM's recipe trained without one class (tabla), then
# fine-tuned on that class's 14 clips alone with (a) a rank-8 LoRA and (b) the whole UNet, at equal steps; each
# scored by bench/prompt_following.py (top-1 of every demo prompt from text). Needs the demo run's stage checkpoints
# and pre-encoded latents (bash scripts/demo.sh). HELD=airplane SUFFIX=_airplane holds out another class. Results:
# bench/results/prompt_following-cpu-lora<SUFFIX>-<row>-<date>.json, gathered by bench/lora.py --demo-dir.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY=.venv/bin/python
HELD=${HELD:-tabla}
STEPS=${STEPS:-200}
DATE=$(date +%F)
work=runs/lora_new_sound${SUFFIX:-}
mkdir -p "$work"
$PY - "$HELD" "$work" <<'PYEOF'
import json, sys
held, work = sys.argv[1], sys.argv[2]
rows = [json.loads(line) for line in open("demo_data/manifest.jsonl", encoding="utf-8")]
with open(f"{work}/without.jsonl", "w", encoding="utf-8") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows if held not in r.get("labels", []))
with open(f"{work}/only.jsonl", "w", encoding="utf-8") as f:
    f.writelines(json.dumps({**r, "split": "train"}) + "\n" for r in rows if held in r.get("labels", []))
PYEOF
stages=(model.vae_ckpt=runs/demo_vae/version_0/checkpoints/last.ckpt
        model.clap_ckpt=runs/demo_clap/version_0/checkpoints/last.ckpt
        model.vocoder_ckpt=runs/demo_vocoder/version_0/checkpoints/last.ckpt)
quiet=(trainer.check_val_every_n_epoch=100000 output_dir=$work)
newest() { ls -d "$work/$1"/version_* | sort -V | tail -n 1; }
# the base: the demo LDM's recipe without the held-out class
$PY train.py --config configs/demo/ldm.yaml "${stages[@]}" data.train_manifest=$work/without.jsonl name=base "${quiet[@]}"
base="$(newest base)/checkpoints/last.ckpt"
# (a) a rank-8 LoRA on the attention projections (lr 1e-3), (b) the whole UNet (lr 1e-4): the same steps, clips,
# warm-up (20) and cosine decay
$PY train.py --config configs/demo/ldm_lora.yaml init_from=$base data.train_manifest=$work/only.jsonl name=lora \
  trainer.max_steps=$STEPS "${quiet[@]}"
$PY train.py --config configs/demo/ldm.yaml init_from=$base model.vae_ckpt=null model.clap_ckpt=null \
  model.vocoder_ckpt=null data.train_manifest=$work/only.jsonl name=full optim.lr=1.0e-4 optim.warmup_steps=20 \
  trainer.max_steps=$STEPS checkpoint.every_n_train_steps=$STEPS "${quiet[@]}"
adapter="$(newest lora)/adapter/adapter.safetensors"
rm -f "$work/lora_merged.ckpt"
$PY convert.py "$base" "$work/lora_merged.ckpt" --lora "$adapter"
for row in base lora full; do
  case $row in
    base) ckpt=$base ;;
    lora) ckpt=$work/lora_merged.ckpt ;;
    full) ckpt="$(newest full)/checkpoints/last.ckpt" ;;
  esac
  $PY bench/prompt_following.py --ldm "$ckpt" --clap runs/demo_clap/version_0/checkpoints/last.ckpt \
    --guidance 2.5 --steps 25 --ldm-rows text --label "lora_$row" \
    --out "bench/results/prompt_following-cpu-lora${SUFFIX:-}-$row-$DATE.json" > "$work/prompt_following_$row.md"
done
echo "lora_new_sound: done ($work)"
