#!/usr/bin/env bash
# Register radpipe's deployments (infra/prefect.yaml) with the Prefect server at PREFECT_API_URL and create
# the `radpipe` process work pool if missing. `make deploy` runs this, then starts a worker.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-.venv/bin}"
if [ -z "${PREFECT_API_URL:-}" ]; then
  echo "error: PREFECT_API_URL is not set: start a server (make stack) or export the URL of yours" >&2
  exit 1
fi
if ! curl -sf "${PREFECT_API_URL%/}/health" >/dev/null; then
  echo "error: no Prefect server answers at PREFECT_API_URL=$PREFECT_API_URL" >&2
  exit 1
fi
"$BIN/prefect" work-pool inspect radpipe >/dev/null 2>&1 || "$BIN/prefect" work-pool create radpipe --type process >/dev/null
RADPIPE_REPO="$PWD" "$BIN/prefect" --no-prompt deploy --all --prefect-file infra/prefect.yaml >/dev/null
"$BIN/prefect" deployment ls
