#!/usr/bin/env bash
# Installs the AWS stand-in (LocalStack, no Docker) into <repo>/.testworld:
#   .testworld/localstack-venv   Python 3.13 venv with uv, the pinned
#                                LocalStack and our plugin (zerofn_localstack_plugin/)
#   .testworld/uv-cache          uv's download cache (nothing is cached elsewhere)
# Idempotent: a fast no-op when the same pins and plugin source are installed
# (a stamp file records them). Safe to run concurrently (flock).
# Prints the venv path as its last line of stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
world="$root/.testworld"
venv="$world/localstack-venv"
pin='localstack-core[runtime]==2026.3.0'
# Dependencies newer than this are ignored: LocalStack does not bound its
# dependencies, and the pin is known to resolve and run with this cut-off.
exclude_newer='2026-04-01'
uv_pin='uv==0.13.9'
plugin="$here/zerofn_localstack_plugin"
stamp="$venv/.zerofn-installed"
# Bump when the steps below change, so that existing installs are redone.
recipe=3
want="recipe$recipe $pin $exclude_newer $uv_pin $(cd "$plugin" && cat pyproject.toml zerofn_localstack_plugin/*.py | sha256sum | cut -c1-16)"

installed() { [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/python" ]]; }

if installed; then
  echo "$venv"
  exit 0
fi

python=""
# A pyenv shim may exist without a usable 3.13 behind it: check each candidate.
for candidate in "${ZEROFN_PYTHON313:-}" "$HOME"/.pyenv/versions/3.13*/bin/python3.13 \
  /usr/local/bin/python3.13 /usr/bin/python3.13 python3.13; do
  [[ -n "$candidate" ]] || continue
  if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1; then
    python="$candidate"
    break
  fi
done
if [[ -z "$python" ]]; then
  echo "install.sh: LocalStack 2026.3 needs Python 3.13; none found (tried \$ZEROFN_PYTHON313," \
    "~/.pyenv/versions/3.13*/bin/python3.13, /usr/local/bin, /usr/bin and PATH)." >&2
  echo "install.sh: install one (e.g. 'pyenv install 3.13') or point ZEROFN_PYTHON313 at it." >&2
  exit 1
fi

mkdir -p "$world"
# Serialise concurrent installs (parallel test processes on a fresh machine).
exec 9>"$world/.install.lock"
flock 9
if installed; then
  echo "$venv"
  exit 0
fi

echo "install.sh: installing LocalStack into $venv (from scratch: ~25 s)" >&2
export UV_CACHE_DIR="$world/uv-cache"
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
if ! "$venv/bin/uv" --version 2>/dev/null | grep -qx "uv ${uv_pin#uv==}.*"; then
  "$venv/bin/python" -m pip install --quiet "$uv_pin"
fi
uv=("$venv/bin/uv" pip install --quiet --python "$venv/bin/python" --exclude-newer "$exclude_newer")
"${uv[@]}" "$pin"
# Build the plugin from a copy so that no build/ or *.egg-info lands in the
# source tree.
rm -rf "$world/plugin-build"
cp -r "$plugin" "$world/plugin-build"
"${uv[@]}" --reinstall-package zerofn-localstack-plugin "$world/plugin-build"
rm -rf "$world/plugin-build"
# Compile everything now: the first start is ~2 s faster, and nothing is
# written into the venv at run time (parallel test processes share it).
"$venv/bin/python" -m compileall -q -j 0 "$venv/lib" >/dev/null
# Check LocalStack will find the plugin (without importing LocalStack, whose
# config module probes the machine on import).
"$venv/bin/python" - <<'EOF'
from importlib.metadata import entry_points
names = {e.name for e in entry_points(group="localstack.lambda.runtime_executor")}
assert "zerofn-noop" in names, f"zerofn-noop executor plugin not registered: {names}"
EOF
echo "$want" >"$stamp"
echo "$venv"
