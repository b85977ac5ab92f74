#!/usr/bin/env bash
# Create .venv in the repo root and install the pinned requirements (idempotent: a stamp of the
# requirements files' hash skips the install when nothing changed). Python 3.11 on Linux x86_64.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
stamp=.venv/.requirements.sha1
want=$(cat requirements.txt requirements-dev.txt | sha1sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && .venv/bin/python -c "import torch" 2>/dev/null; then
  exit 0
fi
echo "setup: installing pinned requirements into .venv (first time: about 5 minutes, 8 GB)"
start=$SECONDS
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# this machine's pip prints one harmless "Location ... is ignored" line per package: hide those
.venv/bin/python -m pip install -q -r requirements-dev.txt 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import torch, torchaudio, pytorch_lightning, diffusers, transformers, open_clip, soundfile" \
  || { echo "setup: the install did not complete (see the pip output above)" >&2; exit 1; }
echo "$want" > "$stamp"
echo "setup: done in $((SECONDS - start)) s"
