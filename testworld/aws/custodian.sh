#!/usr/bin/env bash
# Installs Cloud Custodian (the peer the c7n benchmark compares zerofn with)
# into <repo>/.testworld:
#   .testworld/custodian-venv    Python 3.13 venv with uv and the pinned c7n
#   .testworld/uv-cache          uv's download cache (shared with install.sh)
# Installed on demand by `cargo bench -p zerofn-tests --bench c7n`; nothing
# else needs it. Idempotent: a fast no-op when the same pins are installed (a
# stamp file records them). Safe to run concurrently (flock).
# Prints the venv path as its last line of stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
world="$root/.testworld"
venv="$world/custodian-venv"
pin='c7n==0.9.53'
# Dependencies newer than this are ignored, as in install.sh: the day after
# the pin was published (2026-10-01), so boto3 and the rest are what a user
# installing 0.9.53 then got.
exclude_newer='2026-10-02'
uv_pin='uv==0.13.9'
stamp="$venv/.zerofn-installed"
# Bump when the steps below change, so that existing installs are redone.
recipe=1
want="recipe$recipe $pin $exclude_newer $uv_pin"

installed() { [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/custodian" ]]; }

if installed; then
  echo "$venv"
  exit 0
fi

python=""
# The same interpreter as the AWS stand-in's (a pyenv shim may exist without
# a usable 3.13 behind it: check each candidate).
for candidate in "${ZEROFN_PYTHON313:-}" "$HOME"/.pyenv/versions/3.13*/bin/python3.13 \
  /usr/local/bin/python3.13 /usr/bin/python3.13 python3.13; do
  [[ -n "$candidate" ]] || continue
  if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1; then
    python="$candidate"
    break
  fi
done
if [[ -z "$python" ]]; then
  echo "custodian.sh: no Python 3.13 found (tried \$ZEROFN_PYTHON313," \
    "~/.pyenv/versions/3.13*/bin/python3.13, /usr/local/bin, /usr/bin and PATH)." >&2
  exit 1
fi

mkdir -p "$world"
exec 9>"$world/.install-custodian.lock"
flock 9
if installed; then
  echo "$venv"
  exit 0
fi

echo "custodian.sh: installing $pin into $venv" >&2
export UV_CACHE_DIR="$world/uv-cache"
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
if ! "$venv/bin/uv" --version 2>/dev/null | grep -qx "uv ${uv_pin#uv==}.*"; then
  "$venv/bin/python" -m pip install --quiet "$uv_pin"
fi
"$venv/bin/uv" pip install --quiet --python "$venv/bin/python" --exclude-newer "$exclude_newer" "$pin"
# Compile now, so that no run pays for it (the bench times every run).
"$venv/bin/python" -m compileall -q -j 0 "$venv/lib" >/dev/null
"$venv/bin/custodian" version >/dev/null
echo "$want" >"$stamp"
echo "$venv"
