#!/usr/bin/env bash
# LCM-LoRA on top of a fine-tune made after it (issue 27; LCM-LoRA's claim for images): after
# bench/lora_new_sound.sh, distil the held-out base into an LCM-LoRA adapter, then sample in 4 steps with it on the
# base alone and stacked on the new-sound LoRA (trained before, without knowing of it); bench/prompt_following.py
# scores the 25-step rows without it beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY=.venv/bin/python
STEPS=${STEPS:-200}
DATE=$(date +%F)
work=runs/lora_new_sound
newest() { ls -d "$work/$1"/version_* | sort -V | tail -n 1; }
base="$(newest base)/checkpoints/last.ckpt"
sound="$(newest lora)/adapter/adapter.safetensors"
$PY train.py --config configs/demo/lcm_lora.yaml model.teacher_ckpt="$base" data.train_manifest=$work/without.jsonl \
  name=lcm_lora trainer.max_steps=$STEPS trainer.check_val_every_n_epoch=100000 output_dir=$work
fast="$(newest lcm_lora)/adapter/adapter.safetensors"
judge=(--clap runs/demo_clap/version_0/checkpoints/last.ckpt --guidance 2.5 --steps 25 --ldm-rows text
       --student-steps 4)
$PY bench/prompt_following.py --ldm "$base" --student "$base" --student-lora "$fast" "${judge[@]}" \
  --label lcm_lora_base --out "bench/results/prompt_following-cpu-lcm_lora-base-$DATE.json" \
  > "$work/prompt_following_lcm_lora_base.md"
$PY bench/prompt_following.py --ldm "$base" --ldm-lora "$sound" --student "$base" --student-lora "$sound" \
  --student-lora "$fast" "${judge[@]}" --label lcm_lora_on_sound \
  --out "bench/results/prompt_following-cpu-lcm_lora-on_sound-$DATE.json" > "$work/prompt_following_lcm_lora_on_sound.md"
echo "lcm_lora_after_finetune: done"
