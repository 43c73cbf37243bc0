#!/bin/bash
# run-variant.sh VARIANT [SECONDS]: runs Envoy with VARIANT.json pinned to CPU 0, loads it with
# wrk on CPU 1 (chat, concurrency 32), prints req/s and latency, stops Envoy by its pid.
set -u
cd "$(dirname "$0")"
SWITCHYARD_MASTER_KEY=sk-bench-master-key SWITCHYARD_KEY_0=sk-up \
  taskset -c 0 ../../.venv/bin/envoy -c "$1.json" --concurrency 1 --base-id 4360 -l warn > "env-$1.log" 2>&1 < /dev/null &
envoy=$!
for _ in $(seq 50); do curl -s -o /dev/null localhost:43690/ready && break; sleep 0.2; done
load() {
  BENCH_BODY_FILE=body.json BENCH_HEADERS="Authorization: Bearer sk-bench-master-key" \
    taskset -c 1 wrk -t1 -c32 -d"$1"s -s ../wrk.lua http://127.0.0.1:43600/v1/chat/completions
}
load 2 > /dev/null
load "${2:-6}" | grep BENCH_JSON | python3 -c "import json,sys; r=json.loads(sys.stdin.read()[11:]); print('$1', round(r['requests']/r['duration_us']*1e6), 'req/s, p50', r['p50_us']/1000, 'ms, p99', r['p99_us']/1000, 'ms, errors', r['errors_status'])"
kill "$envoy"; wait "$envoy" 2>/dev/null
