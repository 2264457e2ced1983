#!/usr/bin/env bash
# The local production stack on loopback, state under RADPIPE_HOME/stack:
#   PostgreSQL 15 (Debian's server binaries, initdb/pg_ctl) -> MLflow tracking server (artifacts on disk)
#   Prefect server, Ray head node, Dask scheduler + worker.
# `infra/stack.sh up` starts what is not running, checks health, writes RADPIPE_HOME/stack.env;
# `infra/stack.sh down` stops everything it started and checks that nothing is left.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-$PWD/.venv/bin}"
HOME_DIR="$(realpath -m "${RADPIPE_HOME:-.radpipe}")"
STATE="$HOME_DIR/stack"
PG_PORT="${RADPIPE_STACK_PG_PORT:-54329}"
MLFLOW_PORT="${RADPIPE_STACK_MLFLOW_PORT:-5050}"
PREFECT_PORT="${RADPIPE_STACK_PREFECT_PORT:-4200}"
RAY_PORT="${RADPIPE_STACK_RAY_PORT:-6380}"
RAY_DASHBOARD_PORT="${RADPIPE_STACK_RAY_DASHBOARD_PORT:-8265}"
DASK_PORT="${RADPIPE_STACK_DASK_PORT:-8786}"
DASK_DASHBOARD_PORT="${RADPIPE_STACK_DASK_DASHBOARD_PORT:-8787}"
PG_BIN="${RADPIPE_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
# Ray's socket paths must stay short (107 bytes): its scratch goes under /tmp, keyed by the state folder.
KEY="$(printf '%s' "$STATE" | sha1sum | cut -c1-8)"
RAY_TMP="/tmp/radpipe-ray-$KEY"
# PostgreSQL's data and log. As root, initdb and postgres run as the `postgres` user, who may not reach a
# private RADPIPE_HOME (for example under /root): then they live in /var/tmp, linked from the state folder.
PG_DIR="$STATE/postgres"

die() { echo "error: $*" >&2; exit 1; }
say() { echo "stack: $*"; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
need_port() { port_free "$1" || die "port $1 ($2) is taken on 127.0.0.1: stop what uses it, or set $3"; }

wait_for() {  # description, seconds, command...
  local what=$1 seconds=$2; shift 2
  for _ in $(seq "$seconds"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  die "$what did not become healthy in ${seconds}s (logs: $STATE/logs)"
}

as_postgres() {  # initdb and postgres refuse to run as root: use the Debian package's postgres user then
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_bg() {  # name, command...: a detached process group, pid in $STATE/<name>.pid
  local name=$1; shift
  setsid "$@" >"$STATE/logs/$name.log" 2>&1 < /dev/null &
  echo $! >"$STATE/$name.pid"
}

running() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

pg_dir() {
  if [ "$(id -u)" = 0 ] && [ ! -L "$PG_DIR" ] && ! runuser -u postgres -- test -x "$STATE" 2>/dev/null; then
    local outside="/var/tmp/radpipe-pg-$KEY"
    mkdir -p "$outside" && chown postgres "$outside" && chmod 700 "$outside"
    rm -rf "$PG_DIR" && ln -s "$outside" "$PG_DIR"
  elif [ ! -e "$PG_DIR" ]; then
    mkdir -p "$PG_DIR"
    [ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
  fi
  PG_DIR="$(realpath "$PG_DIR")"
}

up() {
  [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] || die "PostgreSQL server binaries not found: apt-get install postgresql (or set RADPIPE_PG_BIN)"
  [ -x "$BIN/mlflow" ] && [ -x "$BIN/prefect" ] && [ -x "$BIN/ray" ] && [ -x "$BIN/dask" ] || die "run make install first"
  "$BIN/python" -c "import psycopg2" 2>/dev/null || die "psycopg2 is missing from .venv: run make install"
  mkdir -p "$STATE/logs" "$STATE/mlartifacts" "$STATE/ray-storage"
  pg_dir

  if ! as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then
    need_port "$PG_PORT" PostgreSQL RADPIPE_STACK_PG_PORT
    if [ ! -f "$PG_DIR/data/PG_VERSION" ]; then
      # Trust on loopback only: a developer stack; a shared server wants passwords (see infra/k8s).
      as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust >"$STATE/logs/initdb.log"
    fi
    as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" -w \
      -o "-p $PG_PORT -k /tmp -c listen_addresses=127.0.0.1" start >/dev/null
    say "PostgreSQL on 127.0.0.1:$PG_PORT"
  fi
  wait_for PostgreSQL 30 "$PG_BIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT"
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "select 1 from pg_database where datname='mlflow'" | grep -q 1 \
    || psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "create database mlflow"

  if ! running mlflow; then
    need_port "$MLFLOW_PORT" "MLflow server" RADPIPE_STACK_MLFLOW_PORT
    start_bg mlflow "$BIN/mlflow" server --host 127.0.0.1 --port "$MLFLOW_PORT" \
      --backend-store-uri "postgresql+psycopg2://postgres@127.0.0.1:$PG_PORT/mlflow" \
      --artifacts-destination "$STATE/mlartifacts" --workers 1
    say "MLflow server on 127.0.0.1:$MLFLOW_PORT (backend PostgreSQL)"
  fi
  if ! running prefect; then
    need_port "$PREFECT_PORT" "Prefect server" RADPIPE_STACK_PREFECT_PORT
    PREFECT_HOME="$STATE/prefect" PREFECT_SERVER_ANALYTICS_ENABLED=false \
      start_bg prefect "$BIN/prefect" server start --host 127.0.0.1 --port "$PREFECT_PORT"
    say "Prefect server on 127.0.0.1:$PREFECT_PORT"
  fi
  if ! RAY_AUTH_MODE=disabled "$BIN/ray" status --address "127.0.0.1:$RAY_PORT" >/dev/null 2>&1; then
    need_port "$RAY_PORT" "Ray head" RADPIPE_STACK_RAY_PORT
    need_port "$RAY_DASHBOARD_PORT" "Ray dashboard" RADPIPE_STACK_RAY_DASHBOARD_PORT
    mkdir -p "$RAY_TMP"
    # As many logical CPUs as a training run with its loader asks for (radpipe/train/ray.py explains why).
    # Loopback only, like the other services here: no token (Ray 2.60 enables one by default; a cluster
    # should keep it, see infra/k8s). Clients then need no token file either.
    RAY_AUTH_MODE=disabled "$BIN/ray" start --head --node-ip-address 127.0.0.1 --port "$RAY_PORT" --dashboard-host 127.0.0.1 \
      --dashboard-port "$RAY_DASHBOARD_PORT" --num-cpus "$(( $(nproc) > 4 ? $(nproc) : 4 ))" \
      --temp-dir "$RAY_TMP" --disable-usage-stats >"$STATE/logs/ray.log" 2>&1
    say "Ray head on 127.0.0.1:$RAY_PORT (dashboard :$RAY_DASHBOARD_PORT)"
  fi
  if ! running dask-scheduler; then
    need_port "$DASK_PORT" "Dask scheduler" RADPIPE_STACK_DASK_PORT
    need_port "$DASK_DASHBOARD_PORT" "Dask dashboard" RADPIPE_STACK_DASK_DASHBOARD_PORT
    start_bg dask-scheduler "$BIN/dask" scheduler --host 127.0.0.1 --port "$DASK_PORT" \
      --dashboard-address "127.0.0.1:$DASK_DASHBOARD_PORT"
    wait_for "Dask scheduler" 60 bash -c "(exec 3<>/dev/tcp/127.0.0.1/$DASK_PORT)"
    start_bg dask-worker "$BIN/dask" worker "tcp://127.0.0.1:$DASK_PORT" --host 127.0.0.1 \
      --nworkers "$(nproc)" --nthreads 1 --local-directory "$STATE/dask"
    say "Dask scheduler on 127.0.0.1:$DASK_PORT with $(nproc) worker process(es)"
  fi

  wait_for "MLflow server" 120 curl -sf "http://127.0.0.1:$MLFLOW_PORT/health"
  wait_for "Prefect server" 120 curl -sf "http://127.0.0.1:$PREFECT_PORT/api/health"
  wait_for "Ray head" 60 env RAY_AUTH_MODE=disabled "$BIN/ray" status --address "127.0.0.1:$RAY_PORT"
  wait_for "Dask workers" 60 "$BIN/python" -c "
from distributed import Client
with Client('tcp://127.0.0.1:$DASK_PORT', timeout=5) as c:
    c.wait_for_workers(1, timeout=5)"

  cat >"$HOME_DIR/stack.env" <<ENV
# Written by make stack: source it (set -a; . $HOME_DIR/stack.env; set +a) to point radpipe at the stack.
export PREFECT_API_URL=http://127.0.0.1:$PREFECT_PORT/api
export MLFLOW_TRACKING_URI=http://127.0.0.1:$MLFLOW_PORT
export RAY_ADDRESS=127.0.0.1:$RAY_PORT
export RADPIPE_DASK_ADDRESS=tcp://127.0.0.1:$DASK_PORT
export RADPIPE_RAY_STORAGE=$STATE/ray-storage
ENV
  say "healthy; settings in $HOME_DIR/stack.env (. $HOME_DIR/stack.env)"
  say "UIs: Prefect http://127.0.0.1:$PREFECT_PORT  MLflow http://127.0.0.1:$MLFLOW_PORT  Ray http://127.0.0.1:$RAY_DASHBOARD_PORT  Dask http://127.0.0.1:$DASK_DASHBOARD_PORT"
}

stop_pid() {
  local name=$1
  [ -f "$STATE/$name.pid" ] || return 0
  local pid; pid=$(cat "$STATE/$name.pid")
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$STATE/$name.pid"
}

down() {
  stop_pid prefect-worker  # started by make deploy
  stop_pid dask-worker
  stop_pid dask-scheduler
  # Only this stack's Ray (its scratch folder and port): `ray stop` would take every Ray on the machine.
  for signal in TERM KILL; do
    pkill "-$signal" -f -- "$RAY_TMP|127.0.0.1:$RAY_PORT" 2>/dev/null || true
    sleep 2
  done
  stop_pid prefect
  stop_pid mlflow
  if [ -e "$PG_DIR" ]; then
    PG_DIR="$(realpath "$PG_DIR")"
    if [ -n "$PG_BIN" ] && [ -f "$PG_DIR/data/postmaster.pid" ]; then
      as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
  fi
  rm -f "$HOME_DIR/stack.env"
  local left
  left=$(pgrep -af "$STATE|$PG_DIR|$RAY_TMP|127.0.0.1:$RAY_PORT" | grep -v -e "pgrep" -e "stack.sh" || true)
  [ -z "$left" ] || die "processes left behind: $left"
  say "stopped"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) die "usage: infra/stack.sh up|down" ;;
esac
