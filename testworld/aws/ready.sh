#!/usr/bin/env bash
# Usage: ready.sh PORT [TIMEOUT_SECONDS]   (default 60)
#
# Waits until the LocalStack started by start.sh on 127.0.0.1:PORT answers
# GET /_localstack/health with every one of our services "available" (loaded
# on first use) or "running". Exit 0 when ready, 1 on timeout.
set -euo pipefail
port="${1:?usage: $0 PORT [TIMEOUT_SECONDS]}"
timeout="${2:-60}"
services="${ZEROFN_LS_SERVICES:-lambda,iam,sts,ec2,sqs,resourcegroupstaggingapi,logs,apigateway}"
deadline=$((SECONDS + timeout))
while ((SECONDS < deadline)); do
  body="$(curl --noproxy '*' -s --max-time 2 "http://127.0.0.1:$port/_localstack/health" || true)"
  ok=1
  for s in ${services//,/ }; do
    grep -Eq "\"$s\": *\"(available|running)\"" <<<"$body" || { ok=0; break; }
  done
  if ((ok)); then
    exit 0
  fi
  sleep 0.1
done
echo "ready.sh: LocalStack on 127.0.0.1:$port not ready after ${timeout}s" >&2
exit 1
