#!/usr/bin/env bash
# One more row on a new-sound experiment made by bench/lora_new_sound.sh (issue 27's sweep). NAME is a LoRA recipe:
# the adapter trains on the held-out class's clips from the same base, at the same steps, with
# configs/demo/ldm_lora.yaml plus the given overrides (an existing run of that name is reused), then
# bench/prompt_following.py scores it like the rows there. NAME base rescores the base; a NAME starting with full is
# a full fine-tune (lr 1e-4, as there; an existing run of that name is reused). MANIFEST=... trains on other clips
# (default: the held-out class's, only.jsonl).
#   SUFFIX=_birdsong CLIPS=18 bash bench/lora_variant.sh NAME [key=value ...]
# e.g.  SUFFIX=_birdsong bash bench/lora_variant.sh convs_r8 'model.lora.targets=[to_q,to_k,to_v,to_out.0,conv1,conv2]'
# SCALE=0.75 scores the adapter at that scale. Result:
# bench/results/prompt_following-cpu-lora<SUFFIX>-<NAME>[-x<SCALE>][-<CLIPS>clips]-<date>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY=.venv/bin/python
STEPS=${STEPS:-200}
MANIFEST=${MANIFEST:-only.jsonl}
CLIPS=${CLIPS:-6}
SCALE=${SCALE:-1}
DATE=$(date +%F)
name=$1
shift
work=runs/lora_new_sound${SUFFIX:-}
newest() { ls -d "$work/$1"/version_* | sort -V | tail -n 1; }
base="$(newest base)/checkpoints/last.ckpt"
ldm=(--ldm "$base")
case $name in
  base) ;;
  full*)
    if [ ! -d "$work/$name" ]; then
      $PY train.py --config configs/demo/ldm.yaml init_from="$base" model.vae_ckpt=null model.clap_ckpt=null \
        model.vocoder_ckpt=null data.train_manifest=$work/$MANIFEST name="$name" optim.lr=1.0e-4 \
        optim.warmup_steps=20 trainer.max_steps="$STEPS" checkpoint.every_n_train_steps="$STEPS" \
        trainer.check_val_every_n_epoch=100000 output_dir="$work" "$@"
    fi
    ldm=(--ldm "$(newest "$name")/checkpoints/last.ckpt") ;;
  *)
    if [ ! -d "$work/$name" ]; then
      $PY train.py --config configs/demo/ldm_lora.yaml init_from="$base" data.train_manifest=$work/$MANIFEST \
        name="$name" trainer.max_steps="$STEPS" trainer.check_val_every_n_epoch=100000 output_dir="$work" "$@"
    fi
    ldm+=(--ldm-lora "$(newest "$name")/adapter/adapter.safetensors:$SCALE") ;;
esac
tag=$name
[ "$SCALE" = 1 ] || tag=$tag-x$SCALE
[ "$CLIPS" = 6 ] || tag=$tag-${CLIPS}clips
$PY bench/prompt_following.py "${ldm[@]}" --clap runs/demo_clap/version_0/checkpoints/last.ckpt \
  --guidance 2.5 --steps 25 --ldm-rows text --clips-per-prompt "$CLIPS" --label "lora_$tag" \
  --out "bench/results/prompt_following-cpu-lora${SUFFIX:-}-$tag-$DATE.json" > "$work/prompt_following_$tag.md"
tail -n 12 "$work/prompt_following_$tag.md"
