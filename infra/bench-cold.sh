#!/usr/bin/env bash
# make bench-cold: stripped size and Lambda init time of every functions/*
# bootstrap, against the smallest Go Lambda (../shared/perf/coldstart/hello)
# and two AWS floors (sdk-direct beside it; infra/awsfloor), in one run.
#
# Each main is built as the Makefile's build/%/bootstrap rule builds it
# (CGO_ENABLED=0 GOOS=linux -tags lambda.norpc -trimpath -ldflags="-s -w")
# into a temporary directory; hello and sdk-direct are built from their own
# module the same way. ../shared/perf/coldstart/init.sh then starts each one N times under
# the AWS Lambda Runtime Interface Emulator and prints the median init
# duration the emulator reports. Only init is measured: the invocations may
# fail, since no AWS is behind the dummy environment below.
#
#   ./infra/bench-cold.sh            # N=15 starts each
#   N=5 ./infra/bench-cold.sh
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
N=${N:-15}
coldstart=$(cd .. && pwd)/shared/perf/coldstart
[[ -x "$coldstart/init.sh" ]] || { echo "bench-cold: no $coldstart/init.sh" >&2; exit 2; }

# Targets.
max_mb=10         # every bootstrap
max_webhook_mb=8  # the webhook function's bootstrap
max_init_ratio=2  # median init / hello's median init

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

build() { # out, then go build arguments (with -C first when given)
  local out=$1; shift
  local dir=()
  if [[ ${1:-} == -C ]]; then dir=(-C "$2"); shift 2; fi
  CGO_ENABLED=0 GOOS=linux GOARCH="$("$GO" env GOARCH)" \
    "$GO" build "${dir[@]}" -tags lambda.norpc -trimpath -ldflags="-s -w" -o "$out" "$@"
}

# Floors: hello (the smallest Go Lambda), sdk-direct (DynamoDB, SQS and KMS
# clients constructed, nothing called) and awsfloor (infra/awsfloor: the
# same clients making the webhook's four calls, so the SDK's operations and
# request pipeline are linked). Targets are checked against hello.
floors=(hello sdk-direct awsfloor)
names=("${floors[@]}")
echo "bench-cold: building the floors and functions/* ..."
build "$tmp/hello/bootstrap" -C "$coldstart" ./hello
build "$tmp/sdk-direct/bootstrap" -C "$coldstart" ./sdk-direct
build "$tmp/awsfloor/bootstrap" ./infra/awsfloor
for d in functions/*/; do
  fn=$(basename "$d")
  [[ -f "$d/main.go" ]] || continue
  build "$tmp/$fn/bootstrap" "./functions/$fn"
  names+=("$fn")
done
rie=$("$GO" tool -n aws-lambda-rie)

# What the functions read at init (shared/config, functions/*/main.go), with
# dummy values: nothing is reached; credentials and region as Lambda sets them.
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_SESSION_TOKEN=test
export AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128 AWS_LAMBDA_FUNCTION_TIMEOUT=10
export FORGELINK_PROJECTS_TABLE=p FORGELINK_DELIVERIES_TABLE=d FORGELINK_PIPELINES_TABLE=pl FORGELINK_KEYS_TABLE=k FORGELINK_USERS_TABLE=u
export FORGELINK_KMS_KEY_ID=alias/x
export FORGELINK_INTAKE_QUEUE_URL=http://127.0.0.1:9/q FORGELINK_PIPELINES_QUEUE_URL=http://127.0.0.1:9/pl
export FORGELINK_STATUS_QUEUE_URL=http://127.0.0.1:9/st
export FORGELINK_API_TOKEN=0123456789abcdef0123 FORGELINK_PUBLIC_URL=https://ci.example.com
export FORGELINK_LOG_LEVEL=warn
unset AWS_ENDPOINT_URL DYNAMODB_ENDPOINT AWS_PROFILE AWS_LAMBDA_RUNTIME_API

declare -A size median checked
for name in "${names[@]}"; do
  size[$name]=$(stat -c %s "$tmp/$name/bootstrap")
  printf 'bench-cold: %-10s init x%s ... ' "$name" "$N"
  out=$(AWS_LAMBDA_FUNCTION_NAME="bench-$name" "$coldstart/init.sh" "$rie" "$tmp/$name/bootstrap" "$N") || true
  echo "$out"
  median[$name]=$(awk '$1 == "init_ms_median" {print $2}' <<<"$out")
done

# One more start of each, to show it initialised: the emulator logs
# "INIT RTDONE(status: success)", or "(status: error)" when the main exited
# at start-up (a variable missing, say).
check_init() { # name -> "ok" or why not
  local log="$tmp/$1.check.log" port=$((20000 + RANDOM % 20000)) pid
  AWS_LAMBDA_FUNCTION_NAME="bench-$1" "$rie" --runtime-interface-emulator-address "127.0.0.1:$port" "$tmp/$1/bootstrap" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
  curl -s -m 10 -o /dev/null -X POST "http://127.0.0.1:$port/2015-03-31/functions/function/invocations" -d '{}' || true
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if grep -q 'INIT RTDONE(status: success)' "$log"; then
    echo ok
  else
    echo "INIT FAILED: $(grep -v '(rapid)' "$log" | grep -v 'RequestId' | head -3 | tr '\n' ' ')"
  fi
}

fail=0
echo
printf '%-10s %9s %11s %8s  %s\n' bootstrap "size MB" "init ms" "/ hello" "init check"
for name in "${names[@]}"; do
  mb=$(awk -v b="${size[$name]}" 'BEGIN {printf "%.2f", b / 1e6}')
  m=${median[$name]:-}
  ratio=n/a
  if [[ -n $m && -n ${median[hello]:-} ]]; then
    ratio=$(awk -v a="$m" -v b="${median[hello]}" 'BEGIN {printf "%.2fx", a / b}')
  fi
  check=$(check_init "$name")
  checked[$name]=$check
  [[ $check == ok && -n $m ]] || fail=1
  printf '%-10s %9s %11s %8s  %s\n' "$name" "$mb" "${m:-n/a}" "$ratio" "$check"
done

echo
echo "targets: every bootstrap <= $max_mb MB, webhook <= $max_webhook_mb MB, median init <= ${max_init_ratio}x hello (MB = 10^6 bytes)"
for name in "${names[@]}"; do
  [[ " ${floors[*]} " == *" $name "* ]] && continue
  mb=$(awk -v b="${size[$name]}" 'BEGIN {printf "%.2f", b / 1e6}')
  limit=$max_mb
  [[ $name == webhook ]] && limit=$max_webhook_mb
  size_ok=$(awk -v a="$mb" -v l="$limit" 'BEGIN {print (a <= l) ? "met" : "MISSED"}')
  init_ok=n/a
  if [[ ${checked[$name]} != ok || ${checked[hello]} != ok ]]; then
    init_ok="n/a (did not initialise)"
  elif [[ -n ${median[$name]:-} && -n ${median[hello]:-} ]]; then
    init_ok=$(awk -v a="${median[$name]}" -v b="${median[hello]}" -v r="$max_init_ratio" 'BEGIN {print (a <= r * b) ? "met" : "MISSED"}')
  fi
  printf '  %-10s size %6s MB <= %-2s %-6s  init %s\n' "$name" "$mb" "$limit" "$size_ok" "$init_ok"
done
# Missed targets are reported, not failed; a bootstrap that could not be
# measured or did not initialise is.
exit "$fail"
