#!/usr/bin/env bash
# Set up (if needed), build the demo dataset from Debian packages (once), train the four stages on
# it on the CPU (mel VAE, HiFi-GAN vocoder, CLAP, then the LDM on latents pre-encoded by the first
# three), generate clips for the demo prompts, score them with evaluate.py, and measure with
# bench/prompt_following.py how well each link of the chain keeps the prompt (real clips, the VAE and
# vocoder on real mels, the LDM). Extra arguments are passed to every train.py call (e.g.
# trainer.max_steps=50 for a quick look).
# Logs and checkpoints: runs/<name>/version_N (view with .venv/bin/tensorboard --logdir runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY=.venv/bin/python
# classifier-free guidance of the demo clips: 10, not AudioLDM's 2.5; top-1 rose from 1 to 10 in every demo LDM
# measured (BENCHMARKS.md, "Prompt following")
GUIDANCE=${GUIDANCE:-10}
STEPS=${STEPS:-25}         # DPM-Solver++ steps
$PY -m data.demo.build --out demo_data
newest() { ls -d "runs/$1"/version_* | sort -V | tail -n 1; }
summary=""
timed() {  # timed LABEL COMMAND...: run, and note the wall time for the summary
  local label=$1 start=$SECONDS
  shift
  "$@"
  summary+="demo: $label in $((SECONDS - start)) s"$'\n'
}
for config in vae hifigan clap; do
  timed "$config trained" $PY train.py --config "configs/demo/$config.yaml" "$@"
done
stages=(model.vae_ckpt="$(newest demo_vae)/checkpoints/last.ckpt"
        model.clap_ckpt="$(newest demo_clap)/checkpoints/last.ckpt"
        model.vocoder_ckpt="$(newest demo_hifigan)/checkpoints/last.ckpt")
rm -rf demo_data/latents  # made by this run's VAE and CLAP
timed "latents pre-encoded" $PY -m data.preencode --config configs/demo/ldm.yaml "${stages[@]}" --max-segments 4
timed "ldm trained" $PY train.py --config configs/demo/ldm.yaml "${stages[@]}" "$@"
ldm="$(newest demo_ldm)/checkpoints/last.ckpt"
rm -rf demo_outputs
timed "clips generated" $PY generate.py --ckpt "$ldm" --prompts data/demo/prompts.txt --repeat 6 \
  --duration 2.56 --steps "$STEPS" --sampler dpmsolver++ --guidance "$GUIDANCE" --batch-size 16 --out demo_outputs
# FD in the demo CLAP's space and CLAP score against the real clips of the prompts' classes
# (offline; for comparing demo runs, not papers)
refs=(crowd day_ambience water_splash pickaxe drum_hit airplane tabla birdsong)
timed "clips scored" $PY evaluate.py --generated demo_outputs --reference "${refs[@]/#/demo_data/audio/}" \
  --backbone clap --clap-ckpt "$(newest demo_clap)/checkpoints/last.ckpt" --out demo_outputs/eval
# where the prompt is kept or lost: real clips, real mels through Griffin-Lim / the VAE / the vocoder, the LDM
# from the clips' audio embeddings and (the clips above) from the prompts
timed "chain measured" $PY bench/prompt_following.py --ldm "$ldm" --clap "$(newest demo_clap)/checkpoints/last.ckpt" \
  --generated demo_outputs --guidance "$GUIDANCE" --steps "$STEPS" --ldm-rows audio \
  --out demo_outputs/prompt_following.json > demo_outputs/prompt_following.md
grep -v '^headline:' demo_outputs/prompt_following.md
printf '%s' "$summary"
grep '^headline:' demo_outputs/prompt_following.md | sed 's/^headline:/demo: prompt following:/'
echo "demo: the chain table is in demo_outputs/prompt_following.md (bench/prompt_following.py; chance is 12.5%)"
echo "demo: generated wavs and mel images are in demo_outputs/ (generated.jsonl lists them with their prompts)"
echo "demo: checkpoints and TensorBoard logs are under runs/ (demo_vae, demo_hifigan, demo_clap, demo_ldm)"
echo "demo: view them with  .venv/bin/tensorboard --logdir runs"
echo "demo: generate more with  $PY generate.py --ckpt $ldm --text \"a tom drum is hit\" --duration 2.56 --out my_clips"
