#!/usr/bin/env bash
# make invoke FN=<function> EVENT=events/<file>.json
#
# Builds functions/<FN> as a Lambda bootstrap (provided.al2023 style,
# -tags lambda.norpc), starts a local AWS server (moto_server: DynamoDB, SQS,
# KMS) unless AWS_ENDPOINT_URL points at one, creates the tables from
# template.yaml plus the sample projects (infra/devstack seed), runs the
# bootstrap under the AWS Lambda Runtime Interface Emulator - the emulator
# inside `sam local` - and prints the handler's response to EVENT.
set -euo pipefail
cd "$(dirname "$0")/.."

FN="${1:?usage: invoke.sh FN EVENT}"
EVENT="${2:?usage: invoke.sh FN EVENT}"
[[ -f "functions/$FN/main.go" ]] || { echo "invoke: no function $FN (have: $(ls functions | tr '\n' ' '))" >&2; exit 2; }
[[ -f "$EVENT" ]] || { echo "invoke: no event file $EVENT" >&2; exit 2; }

tmp="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # url, log
  for _ in $(seq 1 150); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "invoke: $1 did not come up; log:" >&2; cat "$2" >&2; exit 1
}

export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
if [[ -z "${AWS_ENDPOINT_URL:-}" ]]; then
  port="$(free_port)"
  moto_server -H 127.0.0.1 -p "$port" >"$tmp/moto.log" 2>&1 &
  pids+=($!)
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  wait_http "$AWS_ENDPOINT_URL/moto-api/" "$tmp/moto.log"
fi
export DYNAMODB_ENDPOINT="$AWS_ENDPOINT_URL"

go build -o "$tmp/devstack" ./infra/devstack
"$tmp/devstack" seed -endpoint "$AWS_ENDPOINT_URL" >"$tmp/env"
while IFS= read -r kv; do export "$kv"; done <"$tmp/env"

# A fake GitHub API with the sample repository and its .circleci/config.yml,
# for functions that read from the VCS (trigger). Nothing reaches the internet.
"$tmp/devstack" fakegithub >"$tmp/github.env" 2>"$tmp/github.log" &
pids+=($!)
for _ in $(seq 1 100); do grep -q GITHUB_TOKEN "$tmp/github.env" 2>/dev/null && break; sleep 0.1; done
while IFS= read -r kv; do export "$kv"; done <"$tmp/github.env"

CGO_ENABLED=0 GOOS=linux go build -tags lambda.norpc -trimpath -o "$tmp/bootstrap" "./functions/$FN"

rie_port="$(free_port)"
AWS_LAMBDA_FUNCTION_NAME="forgelink-$FN" AWS_LAMBDA_FUNCTION_TIMEOUT=30 FORGELINK_LOG_LEVEL="${FORGELINK_LOG_LEVEL:-info}" \
  go tool aws-lambda-rie --runtime-interface-emulator-address "127.0.0.1:$rie_port" "$tmp/bootstrap" >"$tmp/rie.log" 2>&1 &
pids+=($!)
url="http://127.0.0.1:$rie_port/2015-03-31/functions/function/invocations"
# Wait for the emulator's port (go tool may first build it: up to 2 minutes
# on a busy machine).
for _ in $(seq 1 1200); do
  (echo >"/dev/tcp/127.0.0.1/$rie_port") 2>/dev/null && break
  sleep 0.1
done

resp="$(curl -sS --retry 20 --retry-connrefused --retry-delay 0 -XPOST "$url" --data-binary @"$EVENT")"
if [[ -n "${INVOKE_LOG:-}" ]]; then cat "$tmp/rie.log" >&2; fi
echo "$resp"
# Fail when the function itself failed (not when it answered an HTTP error status).
if echo "$resp" | grep -q '"errorType"'; then
  echo "invoke: the function failed; emulator log:" >&2; cat "$tmp/rie.log" >&2; exit 1
fi
