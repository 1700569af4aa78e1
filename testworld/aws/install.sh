#!/usr/bin/env bash
# Installs the AWS stand-in (LocalStack, no Docker) into <repo>/.testworld.
# Idempotent: a no-op when the pinned version and our plugin are installed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
world="$root/.testworld"
venv="$world/localstack-venv"
pin='localstack-core[runtime]==2026.3.0'
# The newest dependency versions known to resolve with the pin (LocalStack
# does not bound its dependencies; newer releases have broken it before).
exclude_newer='2026-04-01'
stamp="$venv/.zerofn-installed"
plugin="$here/zerofn-localstack-plugin"
want="$pin $exclude_newer $(cat "$plugin/pyproject.toml" "$plugin"/zerofn_localstack_plugin/*.py | sha256sum | cut -c1-16)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "$venv"
  exit 0
fi

python=""
# A pyenv shim may exist without a usable interpreter behind it: try each.
for candidate in "$HOME"/.pyenv/versions/3.13*/bin/python3.13 /usr/local/bin/python3.13 /usr/bin/python3.13 python3.13; do
  if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1; then
    python="$candidate"; break
  fi
done
if [[ -z "$python" ]]; then
  echo "install.sh: LocalStack 2026.3 needs Python 3.13 (python3.13 on PATH or under ~/.pyenv/versions)" >&2
  exit 1
fi

mkdir -p "$world"
# Serialise concurrent installs (parallel test processes on a fresh machine).
exec 9>"$world/.install.lock"
flock 9
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "$venv"
  exit 0
fi

[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
[[ -x "$venv/bin/uv" ]] || "$venv/bin/python" -m pip install --quiet --disable-pip-version-check uv
export UV_CACHE_DIR="$world/uv-cache"
"$venv/bin/uv" pip install --quiet --python "$venv/bin/python" --exclude-newer "$exclude_newer" "$pin"
"$venv/bin/uv" pip install --quiet --python "$venv/bin/python" --reinstall-package zerofn-localstack-plugin "$plugin"
echo "$want" > "$stamp"
echo "$venv"
