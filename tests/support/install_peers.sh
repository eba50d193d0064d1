#!/usr/bin/env bash
# Installs the real scrape targets that tests/real_targets.rs runs, the
# reference Prometheus server it can be compared with, and the browser that
# tests/ui.rs drives:
#   - Debian packages prometheus, prometheus-pushgateway, prometheus-node-exporter,
#     prometheus-alertmanager, chromium and chromium-driver
#     (only those whose binary is missing; needs root or sudo then);
#   - a Python venv with the pinned packages of requirements.txt beside this
#     script (FastAPI + prometheus-fastapi-instrumentator + uvicorn, Flask +
#     gunicorn + prometheus_client), at $HEARTH_PEERS_DIR/venv, by default
#     <repo>/target/peers/venv. It is rebuilt only when requirements.txt or
#     the Python version changes.
#
# Idempotent and fast when everything is in place. The last line printed on
# stdout is `PEERS_VENV=<path of the venv>`; everything else goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
peers="${HEARTH_PEERS_DIR:-$root/target/peers}"
venv="$peers/venv"
python="${PYTHON:-python3}"
mkdir -p "$peers"

log() { echo "install_peers: $*" >&2; }

# One installer at a time (parallel test runs share the cache).
exec 9>"$peers/.lock"
if command -v flock >/dev/null 2>&1; then
  flock -w 900 9 || { log "timed out waiting for $peers/.lock"; exit 1; }
fi

# --- Debian packages -------------------------------------------------------
declare -A bin_of=(
  [prometheus]=/usr/bin/prometheus
  [prometheus-pushgateway]=/usr/bin/prometheus-pushgateway
  [prometheus-node-exporter]=/usr/bin/prometheus-node-exporter
  [prometheus-alertmanager]=/usr/bin/prometheus-alertmanager
  [chromium]=/usr/bin/chromium
  [chromium-driver]=/usr/bin/chromedriver
)
missing=()
for pkg in "${!bin_of[@]}"; do
  [ -x "${bin_of[$pkg]}" ] || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; else
      log "need root to apt-get install ${missing[*]}"; exit 1
    fi
  fi
  log "apt-get install ${missing[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# --- Python venv -----------------------------------------------------------
command -v "$python" >/dev/null 2>&1 || { log "$python not found"; exit 1; }
want="$({ "$python" -c 'import sys; print(sys.version)'; cat "$here/requirements.txt"; } | sha256sum | cut -d' ' -f1)"
stamp="$venv/.peers-stamp"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null || true)" = "$want" ] \
   && "$venv/bin/python" -c 'import fastapi, prometheus_fastapi_instrumentator, uvicorn, flask, gunicorn, prometheus_client' 2>/dev/null; then
  log "venv up to date: $venv"
else
  log "building venv $venv"
  rm -rf "$venv"
  if ! "$python" -m venv "$venv" >&2; then
    log "python venv module missing: apt-get install python3-venv"
    [ "$(id -u)" -eq 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
    rm -rf "$venv"
    "$python" -m venv "$venv" >&2
  fi
  "$venv/bin/pip" install --disable-pip-version-check -q -r "$here/requirements.txt" >&2
  echo "$want" >"$stamp"
  log "venv ready"
fi

echo "PEERS_VENV=$venv"
