#!/usr/bin/env bash
# Set up (if needed), build the demo dataset from Debian packages (once), and train every stage
# that exists on it on the CPU: mel VAE, HiFi-GAN vocoder, CLAP. Extra arguments are passed to
# every train.py call (e.g. trainer.max_steps=50 for a quick look).
# Logs and checkpoints: runs/<stage>/version_N (view with .venv/bin/tensorboard --logdir runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/python -m data.demo.build --out demo_data
summary=""
for config in vae hifigan clap; do
  start=$SECONDS
  .venv/bin/python train.py --config "configs/demo/$config.yaml" "$@"
  summary+="demo: $config trained in $((SECONDS - start)) s"$'\n'
done
printf '%s' "$summary"
echo "demo: checkpoints and TensorBoard logs are under runs/ (demo_vae, demo_hifigan, demo_clap)"
echo "demo: view them with  .venv/bin/tensorboard --logdir runs"
