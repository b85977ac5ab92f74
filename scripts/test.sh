#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The original AudioLDM code (PyPI audioldm 0.1.1, no dependencies) is the reference the weight
# converters are tested against. Its package is also named "audioldm", so it lives outside the venv
# in .refs/ and only tests/reference/*_probe.py subprocesses import it.
ref=.refs/audioldm-0.1.1
if [ ! -f "$ref/audioldm/latent_diffusion/openaimodel.py" ]; then
  .venv/bin/python -m pip install -q --no-deps --target "$ref" audioldm==0.1.1 2>&1 | grep -v "^WARNING: Location" || true
fi
# The original AudioLDM 2 code (PyPI audioldm2 0.1.0, no dependencies) is the reference for the AudioLDM 2
# networks (crossattn-T5 UNet, FlanT5HiddenState). Its pins (old transformers, torch, ...) must not enter the
# venv, so it also lives in .refs/ and only tests/reference/original_audioldm2_probe.py loads its files.
ref2=.refs/audioldm2-0.1.0
if [ ! -f "$ref2/audioldm2/latent_diffusion/modules/diffusionmodules/openaimodel.py" ]; then
  .venv/bin/python -m pip install -q --no-deps --target "$ref2" audioldm2==0.1.0 2>&1 | grep -v "^WARNING: Location" || true
fi
# tests/test_app_browser.py drives a real browser: Debian's chromium and its driver (root, apt-get; once)
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "test: installing Debian's chromium and chromium-driver for the browser test"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
    || echo "test: could not install chromium (needs root and Debian's registry); the browser test will fail" >&2
fi
# lint and format (pyproject.toml): zero findings, before any test runs
.venv/bin/ruff check --quiet . || { echo "test: ruff check found the problems above (.venv/bin/ruff check --fix . fixes many)" >&2; exit 1; }
.venv/bin/ruff format --check --quiet . || { echo "test: files above are not formatted (.venv/bin/ruff format .)" >&2; exit 1; }
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1
exec .venv/bin/python -m pytest -q "$@"
