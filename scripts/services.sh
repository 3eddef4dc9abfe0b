#!/usr/bin/env bash
# Start or stop throwaway test services on loopback: Redis, PostgreSQL, and a moto S3 server.
#   scripts/services.sh start   -> starts all three, writes .services/env (source it)
#   scripts/services.sh stop    -> stops them and removes their data
#   scripts/services.sh ensure  -> installs missing Debian packages (root only)
# Ports come from FOLEY_TEST_{REDIS,PG,S3}_PORT (defaults 56379, 55432, 55000).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
state="${FOLEY_SERVICES_DIR:-$here/.services}"
venv="${VENV:-$here/.venv}"
redis_port="${FOLEY_TEST_REDIS_PORT:-56379}"
pg_port="${FOLEY_TEST_PG_PORT:-55432}"
s3_port="${FOLEY_TEST_S3_PORT:-55000}"

log() { echo "services: $*" >&2; }

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && [ -x "$d/initdb" ] && { echo "$d"; return; }
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return; }
  return 1
}

ensure() {
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  pg_bin >/dev/null 2>&1 || missing+=(postgresql)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing ${missing[*]}: install them (sudo apt-get install ${missing[*]}) and rerun"
    exit 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts packaged services on install; the tests use their own throwaway instances.
  service redis-server stop >/dev/null 2>&1 || true
  service postgresql stop >/dev/null 2>&1 || true
}

wait_for() {  # wait_for NAME CMD...
  local name=$1; shift
  for _ in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  log "$name did not come up"; return 1
}

start() {
  ensure
  stop_quiet
  mkdir -p "$state"
  # Redis: no persistence, loopback only.
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --daemonize yes --pidfile "$state/redis.pid" --logfile "$state/redis.log" --dir "$state"
  # PostgreSQL: a throwaway cluster owned by the postgres user when we are root.
  local bin; bin=$(pg_bin)
  mkdir -p "$state/pg"
  local as=()
  if [ "$(id -u)" -eq 0 ]; then chown postgres: "$state/pg"; as=(runuser -u postgres --); fi
  "${as[@]}" "$bin/initdb" -D "$state/pg/data" -U postgres -A trust -E UTF8 >"$state/pg-init.log" 2>&1
  "${as[@]}" "$bin/pg_ctl" -D "$state/pg/data" -l "$state/pg/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k /tmp -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null
  # moto in server mode: a real HTTP S3 endpoint.
  nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$s3_port" >"$state/moto.log" 2>&1 &
  echo $! >"$state/moto.pid"
  wait_for redis "$venv/bin/python" -c "import socket; socket.create_connection(('127.0.0.1', $redis_port), 1)"
  wait_for moto "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$s3_port/', timeout=1)"
  cat >"$state/env" <<ENV
export FOLEY_TEST_REDIS_URL=redis://127.0.0.1:$redis_port/0
export FOLEY_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:$pg_port/postgres
export FOLEY_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port
ENV
  log "redis :$redis_port, postgresql :$pg_port, s3 (moto) :$s3_port up; env in $state/env"
}

stop_quiet() {
  [ -d "$state" ] || return 0
  if [ -f "$state/redis.pid" ]; then kill "$(cat "$state/redis.pid")" 2>/dev/null || true; fi
  if [ -f "$state/moto.pid" ]; then kill "$(cat "$state/moto.pid")" 2>/dev/null || true; fi
  if [ -d "$state/pg/data" ]; then
    local bin; bin=$(pg_bin)
    local as=(); [ "$(id -u)" -eq 0 ] && as=(runuser -u postgres --)
    "${as[@]}" "$bin/pg_ctl" -D "$state/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$state"
}

case "${1:-}" in
  start) start ;;
  stop) stop_quiet; log "stopped" ;;
  ensure) ensure ;;
  *) echo "usage: $0 start|stop|ensure" >&2; exit 2 ;;
esac
