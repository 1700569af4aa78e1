#!/usr/bin/env bash
# Usage: start.sh PORT DATA_DIR
#
# Runs LocalStack in the foreground, listening on 127.0.0.1:PORT only, with
# Lambda (our no-op executor: no Docker, no code runs), IAM, STS, EC2 and SQS.
# Every file it writes goes under DATA_DIR (created if missing; HOME and
# TMPDIR point into it). Nothing is fetched from the network: no analytics,
# no SSL certificate download, no DNS server, no infra downloads.
#
# The script execs LocalStack, so its PID is LocalStack's; it writes it to
# DATA_DIR/localstack.pid, and LocalStack leads its own process group (see
# below), so stopping the group stops everything:
#   testworld/aws/start.sh 4566 /tmp/ls >/tmp/ls.log 2>&1 &
#   testworld/aws/ready.sh 4566 60
#   kill -KILL -- -"$(cat /tmp/ls/localstack.pid)"; rm -rf /tmp/ls
# No state is kept, so KILL is fine; TERM takes ~5 s to shut down cleanly.
# Extra settings may be passed in the environment: LS_LOG (e.g. debug),
# ZEROFN_LS_SERVICES (default lambda,iam,sts,ec2,sqs,resourcegroupstaggingapi,logs,apigateway), ZEROFN_LS_EAGER (1,
# the default: load the services before reporting ready, ~4 s; 0: ready in
# ~1 s, and each service loads on its first request, ~3 s more in all) and
# ZEROFN_LAMBDA_PREPARE_DELAY_MS (default 0: how long each new function
# version stays Pending/InProgress; see zerofn_localstack_plugin).
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 PORT DATA_DIR" >&2
  exit 2
fi
port="$1"
if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
  echo "start.sh: bad port '$port'" >&2
  exit 2
fi
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$2"
data="$(cd "$2" && pwd)"
mkdir -p "$data/home" "$data/tmp" "$data/fs" "$data/s3"

# Fast no-op when installed; its progress goes to stderr.
venv="$(bash "$here/install.sh" | tail -n 1)"

# LocalStack gets this script's PID (exec) and leads its own process group,
# so `kill -- -PID` stops everything it may start: if we do not lead a group
# already (e.g. Rust's Command::process_group(0), or a shell job), setsid
# makes one without forking.
echo "$$" >"$data/localstack.pid"
newgroup=()
if [[ "$(ps -o pgid= -p "$$" | tr -d ' ')" != "$$" ]]; then
  newgroup=(setsid)
fi

# A clean environment: nothing of the caller's (AWS_*, proxies, DEBUG...)
# reaches LocalStack.
exec env -i \
  PATH="/usr/local/bin:/usr/bin:/bin" \
  LANG=C.UTF-8 \
  OVERRIDE_IN_DOCKER=0 \
  HOME="$data/home" \
  TMPDIR="$data/tmp" \
  FILESYSTEM_ROOT="$data/fs" \
  ZEROFN_S3_STORAGE_DIR="$data/s3" \
  GATEWAY_SERVER=hypercorn \
  GATEWAY_LISTEN="127.0.0.1:$port" \
  EAGER_SERVICE_LOADING="${ZEROFN_LS_EAGER:-1}" \
  SERVICES="${ZEROFN_LS_SERVICES:-lambda,iam,sts,ec2,sqs,resourcegroupstaggingapi,logs,apigateway}" \
  LAMBDA_RUNTIME_EXECUTOR=zerofn-noop \
  DNS_ADDRESS=0 \
  DISABLE_EVENTS=1 \
  SKIP_SSL_CERT_DOWNLOAD=1 \
  ZEROFN_LAMBDA_PREPARE_DELAY_MS="${ZEROFN_LAMBDA_PREPARE_DELAY_MS:-0}" \
  LS_LOG="${LS_LOG:-info}" \
  "${newgroup[@]}" "$venv/bin/python" -m zerofn_localstack_plugin.launch
