#!/usr/bin/env bash
# Set up (if needed), build the demo dataset from Debian packages (once), and train the demo
# stages on it on the CPU. Logs: runs/<stage>/version_N (tensorboard --logdir runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/python -m data.demo.build --out demo_data
start=$SECONDS
.venv/bin/python train.py --config configs/demo/vae.yaml "$@"
echo "demo: VAE trained in $((SECONDS - start)) s; checkpoints and TensorBoard logs are under runs/demo_vae/"
echo "demo: view them with  .venv/bin/tensorboard --logdir runs"
