#!/usr/bin/env python3
"""make bench: Switchyard's overhead against plain Envoy (and the LiteLLM proxy), side by side.

One run, target after target, the same load generator (wrk) and the same requests:
  upstream   the fake OpenAI upstream itself (bench-upstream), for the floor of the floor
  envoy      plain Envoy, router only, routing to it
  switchyard `switchyard up` (the filter, master key on) routing to it
  switchyard-vkey  the same, called with a virtual key from /key/generate (looked up in the
             sidecar's store once, then cached; every request's spend logged): the cost of
             keys and spend against the master-key path
  switchyard-limited  the same with a key that has rpm, tpm and parallel limits (high enough
             never to refuse): the cost of counting them against the unlimited key
  switchyard-cached  the response cache on (litellm_settings.cache, in the sidecar's memory):
             the same request again and again is a hit (answered by the gateway, the
             provider never asked); with `cache: {"s-maxage": 0}` every request is a miss
             (a lookup that finds nothing fresh, the provider, the answer kept)
  switchyard-logged  the logging callbacks on: `otel` (a trace per request) and `generic_api`
             (each request's StandardLoggingPayload, prompt and answer included), both sent to
             the upstream: what the sidecar's delivery and the filter's prompt copy cost
  litellm    the LiteLLM proxy from PyPI (BENCH_LITELLM=1; installed into bench/.litellm-venv)

On 2 cores the targets run pinned to core 0 (Envoy with one worker) and the load generator
and the upstream to core 1, so the target never competes with the load for its core.
Every load runs twice, so noise is visible. Results: printed, and written as JSON and
Markdown under bench/results/. Never part of `make test`.
"""

import argparse
import datetime
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENVOY = ROOT / ".venv/bin/envoy"
SWITCHYARD = ROOT / "target/release/switchyard"
WASM = Path(os.environ.get("BENCH_WASM", ROOT / "target/wasm32-wasip1/release/switchyard_filter.wasm"))
UPSTREAM = ROOT / "target/release/bench-upstream"
LITELLM_VENV = ROOT / "bench/.litellm-venv"
RESULTS = ROOT / "bench/results"
WRK_SCRIPT = ROOT / "bench/wrk.lua"

TARGET_CPU = "0"
LOAD_CPU = "1"
MASTER_KEY = "sk-bench-master-key"

CHAT = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
        {"role": "user", "content": "Write one sentence about the sea, and mention a lighthouse."},
    ],
    "max_tokens": 64,
    "temperature": 0.7,
}
BODIES = {
    "chat": CHAT,
    "stream": {**CHAT, "stream": True},
    "embeddings": {"model": "text-embedding-3-small", "input": "The food was delicious and the waiter was friendly."},
    "anthropic": {**CHAT, "model": "claude-3-5-haiku"},
    "chat-miss": {**CHAT, "cache": {"s-maxage": 0}},
    # The agent APIs (switchyard only): Anthropic's Messages API to an Anthropic deployment
    # (passed through) and to an OpenAI one (bridged through chat); the Responses API to an
    # OpenAI-compatible server (bridged).
    "messages": {"model": "claude-3-5-haiku", "max_tokens": 64, "system": CHAT["messages"][0]["content"],
                 "messages": [CHAT["messages"][1]]},
    "messages-bridged": {"model": "gpt-4o-mini", "max_tokens": 64, "system": CHAT["messages"][0]["content"],
                         "messages": [CHAT["messages"][1]]},
    "responses-bridged": {"model": "bridged-mini", "instructions": CHAT["messages"][0]["content"],
                          "input": CHAT["messages"][1]["content"], "max_output_tokens": 64},
}
# (name, body, concurrency, path)
LOADS = [
    ("chat c1", "chat", 1, "/v1/chat/completions"),
    ("chat c32", "chat", 32, "/v1/chat/completions"),
    ("chat c128", "chat", 128, "/v1/chat/completions"),
    ("stream c32", "stream", 32, "/v1/chat/completions"),
    ("embeddings c32", "embeddings", 32, "/v1/embeddings"),
    ("anthropic c32", "anthropic", 32, "/v1/chat/completions"),
    ("messages c32", "messages", 32, "/v1/messages"),
    ("messages bridged c32", "messages-bridged", 32, "/v1/messages"),
    ("responses bridged c32", "responses-bridged", 32, "/v1/responses"),
]
# Loads only Switchyard serves (its own APIs in front).
SWITCHYARD_ONLY = ("messages", "messages-bridged", "responses-bridged")
# The loads of switchyard-logged.
LOGGED_LOADS = [("chat c32 logged", "chat", 32, "/v1/chat/completions")]
# The loads of switchyard-cached.
CACHE_LOADS = [
    ("chat c32 cache hit", "chat", 32, "/v1/chat/completions"),
    ("chat c32 cache miss", "chat-miss", 32, "/v1/chat/completions"),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port, path, timeout=30.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before answering on :{port}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            c.getresponse().read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port}{path} within {timeout}s")


class Proc:
    """A process we started, stopped by pid (and its children, through its process group)."""

    def __init__(self, argv, cpu, log, env=None, cwd=None):
        self.log = open(log, "wb")
        self.p = subprocess.Popen(["taskset", "-c", cpu, *map(str, argv)], stdout=self.log,
                                  stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)

    def pids(self):
        """The process and all its descendants."""
        children = {}
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    children.setdefault(ppid, []).append(int(d.name))
                except (OSError, IndexError, ValueError):
                    pass
        out, todo = [], [self.p.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children.get(pid, []))
        return out

    def peak_rss_mb(self):
        """Sum of the peak resident set (VmHWM) of the process tree."""
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return round(total / 1024, 1)

    def stop(self):
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()
        self.log.close()


def run_wrk(port, path, body_file, headers, concurrency, duration):
    env = dict(os.environ, BENCH_BODY_FILE=str(body_file), BENCH_HEADERS="|".join(headers))
    out = subprocess.run(
        ["taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--timeout", "10s",
         "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{port}{path}"],
        env=env, capture_output=True, text=True, timeout=duration + 60)
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            r = json.loads(line[len("BENCH_JSON "):])
            secs = r["duration_us"] / 1e6
            errors = sum(v for k, v in r.items() if k.startswith("errors_"))
            return {
                "requests": r["requests"], "rps": round(r["requests"] / secs, 1), "errors": errors,
                **{k.replace("_us", "_ms"): round(r[k] / 1000, 3) for k in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us")},
            }
    raise RuntimeError(f"wrk printed no result: {out.stdout}\n{out.stderr}")


def measure_stream(port, path, body, headers, n):
    """Time to first byte and to last byte of a streamed chat request, one at a time."""
    payload = json.dumps(body).encode()
    hdrs = {"Content-Type": "application/json"}
    for h in headers:
        k, v = h.split(":", 1)
        hdrs[k.strip()] = v.strip()
    first, last, errors = [], [], 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", path, payload, hdrs)
        resp = conn.getresponse()
        chunk = resp.read1(65536)
        t1 = time.perf_counter()
        data = chunk + resp.read()
        t2 = time.perf_counter()
        if resp.status != 200 or b"[DONE]" not in data:
            errors += 1
        first.append((t1 - t0) * 1000)
        last.append((t2 - t0) * 1000)
    conn.close()
    q = lambda xs, p: round(statistics.quantiles(xs, n=1000)[int(p * 10) - 1], 3)
    return {"requests": n, "errors": errors, "ttfb_p50_ms": q(first, 50), "ttfb_p99_ms": q(first, 99),
            "ttlb_p50_ms": q(last, 50), "ttlb_p99_ms": q(last, 99)}


def plain_envoy_bootstrap(port, admin, upstream):
    cluster = "upstream"
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {
            "listeners": [{
                "name": "plain", "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "plain",
                        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                            {"match": {"prefix": "/"}, "route": {"cluster": cluster, "timeout": "600s"}}]}]},
                        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
                    }}]}],
            }],
            "clusters": [{
                "name": cluster, "type": "STATIC", "connect_timeout": "1s",
                "load_assignment": {"cluster_name": cluster, "endpoints": [{"lb_endpoints": [{"endpoint": {
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": upstream}}}}]}]},
            }],
        },
    }


def switchyard_config(upstream, with_anthropic, cache=False, logged=False):
    base = f"http://127.0.0.1:{upstream}/v1"
    models = [
        ("gpt-4o-mini", "openai/gpt-4o-mini"),
        ("text-embedding-3-small", "openai/text-embedding-3-small"),
        # An OpenAI-compatible server: no Responses API of its own, so it is bridged.
        ("bridged-mini", "hosted_vllm/gpt-4o-mini"),
    ]
    if with_anthropic:
        models.append(("claude-3-5-haiku", "anthropic/claude-3-5-haiku-20241022"))
    lines = ["model_list:"]
    for name, model in models:
        api_base = base if not model.startswith("anthropic/") else f"http://127.0.0.1:{upstream}"
        lines += [f"  - model_name: {name}", "    litellm_params:", f"      model: {model}",
                  f"      api_base: {api_base}", "      api_key: sk-upstream-fake"]
    lines += ["general_settings:", f"  master_key: {MASTER_KEY}"]
    if cache:
        lines += ["litellm_settings:", "  cache: true"]
    if logged:
        lines += ["litellm_settings:", "  callbacks: [otel, generic_api]"]
    return "\n".join(lines + [""])


def start_target(name, upstream, work, with_anthropic):
    """Starts a target pinned to TARGET_CPU; returns (Proc, port, headers)."""
    port = free_port()
    if name == "upstream":
        return None, upstream, []
    if name == "envoy":
        admin = free_port()
        cfg = work / "plain-envoy.json"
        cfg.write_text(json.dumps(plain_envoy_bootstrap(port, admin, upstream)))
        p = Proc([ENVOY, "-c", cfg, "--concurrency", "1", "--base-id", port, "-l", "warn"], TARGET_CPU,
                 work / "envoy.log")
        wait_http(admin, "/ready", proc=p.p)
        return p, port, []
    headers = [f"Authorization: Bearer {MASTER_KEY}"]
    if name in ("switchyard", "switchyard-vkey", "switchyard-limited", "switchyard-cached", "switchyard-logged"):
        cfg = work / f"{name}.yaml"
        cfg.write_text(switchyard_config(upstream, with_anthropic, cache=name == "switchyard-cached",
                                         logged=name == "switchyard-logged"))
        db = work / f"{name}.db"
        # The callbacks deliver to the upstream, which answers any POST with 200.
        env = dict(os.environ, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{upstream}",
                   GENERIC_LOGGER_ENDPOINT=f"http://127.0.0.1:{upstream}/log")
        p = Proc([SWITCHYARD, "up", "--config", cfg, "--host", "127.0.0.1", "--port", port,
                  "--admin-port", free_port(), "--sidecar-port", free_port(), "--concurrency", "1",
                  "--database-path", db, "--wasm", WASM, "--envoy", ENVOY], TARGET_CPU,
                 work / f"{name}.log", env=env)
        wait_http(port, "/health/liveliness", proc=p.p)
        if name == "switchyard-vkey":
            headers = [f"Authorization: Bearer {generate_key(port, {'key_alias': 'bench'})}"]
        if name == "switchyard-limited":
            limits = {"key_alias": "bench-limited", "rpm_limit": 10**9, "tpm_limit": 10**12,
                      "max_parallel_requests": 10**6}
            headers = [f"Authorization: Bearer {generate_key(port, limits)}"]
        return p, port, headers
    if name == "litellm":
        cfg = work / "litellm.yaml"
        cfg.write_text(switchyard_config(upstream, False))
        env = dict(os.environ, LITELLM_LOG="ERROR", LITELLM_MODE="PRODUCTION")
        p = Proc([LITELLM_VENV / "bin/litellm", "--config", cfg, "--host", "127.0.0.1", "--port", port,
                  "--num_workers", "1"], TARGET_CPU, work / "litellm.log", env=env)
        wait_http(port, "/health/liveliness", timeout=180, proc=p.p)
        return p, port, headers
    raise ValueError(name)


def generate_key(port, fields):
    """A virtual key with these fields from the gateway's /key/generate (master key)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/key/generate", body=json.dumps(fields),
                 headers={"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"})
    answer = conn.getresponse()
    body = answer.read()
    if answer.status != 200:
        sys.exit(f"/key/generate answered {answer.status}: {body[:300]!r}")
    return json.loads(body)["key"]


def ensure_litellm():
    if (LITELLM_VENV / "bin/litellm").exists():
        return
    print("installing the LiteLLM proxy into bench/.litellm-venv (once) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", LITELLM_VENV], check=True)
    subprocess.run([LITELLM_VENV / "bin/pip", "install", "-q", "litellm[proxy]"], check=True)


def anthropic_supported():
    """Whether Switchyard serves an Anthropic deployment yet (the translated-request load)."""
    with tempfile.TemporaryDirectory() as d:
        cfg = Path(d) / "c.yaml"
        cfg.write_text(switchyard_config(9, True))
        return subprocess.run([SWITCHYARD, "check", "--config", cfg], capture_output=True).returncode == 0


def fmt_table(rows, cols):
    widths = [max([len(str(c))] + [len(str(r.get(c, ""))) for r in rows]) for c in cols]
    line = lambda vals: "| " + " | ".join(str(v).ljust(w) for v, w in zip(vals, widths)) + " |"
    out = [line(cols), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line([r.get(c, "") for c in cols]) for r in rows]
    return "\n".join(out)


def median_of(results, target, load, key):
    """The median of a measure over a target's runs of a load (None without runs)."""
    runs = [r[key] for r in results.get(target, {}).get(load, {}).get("runs", []) if key in r]
    return statistics.median(runs) if runs else None


def ratios(results, loads):
    """Switchyard against plain Envoy and LiteLLM, per load, from the median of the two runs."""
    rows = []
    for load in loads:
        sy = {k: median_of(results, "switchyard", load, k) for k in ("p50_ms", "p99_ms", "rps")}
        if sy["rps"] is None:
            continue
        row = {"load": load}
        env = {k: median_of(results, "envoy", load, k) for k in ("p50_ms", "p99_ms", "rps")}
        if env["rps"]:
            row["added p50 ms"] = round(sy["p50_ms"] - env["p50_ms"], 3)
            row["added p99 ms"] = round(sy["p99_ms"] - env["p99_ms"], 3)
            row["RPS vs envoy"] = f"{sy['rps'] / env['rps']:.0%}"
        ll = {k: median_of(results, "litellm", load, k) for k in ("p50_ms", "p99_ms", "rps")}
        if ll["rps"]:
            row["RPS vs litellm"] = f"{sy['rps'] / ll['rps']:.1f}x"
            row["p99 vs litellm"] = f"{sy['p99_ms'] / ll['p99_ms']:.2f}x"
        rows.append(row)
    return rows


def vkey_ratios(results, loads):
    """switchyard-vkey against switchyard (the master key), and switchyard-limited against
    switchyard-vkey, per load."""
    rows = []
    for load in loads:
        master = {k: median_of(results, "switchyard", load, k) for k in ("p50_ms", "p99_ms", "rps")}
        vkey = {k: median_of(results, "switchyard-vkey", load, k) for k in ("p50_ms", "p99_ms", "rps")}
        limited = median_of(results, "switchyard-limited", load, "rps")
        if not master["rps"] or not vkey["rps"]:
            continue
        row = {"load": load, "master RPS": round(master["rps"]), "virtual key RPS": round(vkey["rps"]),
               "RPS ratio": f"{vkey['rps'] / master['rps']:.0%}",
               "added p50 ms": round(vkey["p50_ms"] - master["p50_ms"], 3),
               "added p99 ms": round(vkey["p99_ms"] - master["p99_ms"], 3)}
        if limited:
            row["rate-limited key RPS"] = f"{round(limited)} ({limited / vkey['rps']:.0%})"
        rows.append(row)
    return rows


def logged_ratios(results):
    """switchyard-logged against switchyard without callbacks (chat c32)."""
    plain = median_of(results, "switchyard", "chat c32", "rps")
    m = {k: median_of(results, "switchyard-logged", "chat c32 logged", k) for k in ("p50_ms", "p99_ms", "rps")}
    if m["rps"] is None:
        return []
    return [{"load": "chat c32 logged", "RPS": round(m["rps"]), "p50 ms": round(m["p50_ms"], 3), "p99 ms": round(m["p99_ms"], 3),
             "RPS vs no callbacks": f"{m['rps'] / plain:.0%}" if plain else ""}]


def cache_ratios(results):
    """switchyard-cached's hits and misses against switchyard without a cache (chat c32)."""
    plain = median_of(results, "switchyard", "chat c32", "rps")
    rows = []
    for load, _, _, _ in CACHE_LOADS:
        m = {k: median_of(results, "switchyard-cached", load, k) for k in ("p50_ms", "p99_ms", "rps")}
        if m["rps"] is None:
            continue
        rows.append({"load": load, "RPS": round(m["rps"]), "p50 ms": round(m["p50_ms"], 3), "p99 ms": round(m["p99_ms"], 3),
                     "RPS vs no cache": f"{m['rps'] / plain:.0%}" if plain else ""})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", "8")),
                    help="seconds per wrk run (default 8)")
    ap.add_argument("--runs", type=int, default=2, help="runs per load (default 2)")
    ap.add_argument("--stream-requests", type=int, default=200)
    ap.add_argument("--targets", default=None,
                    help="comma list (default: upstream,envoy,switchyard,switchyard-vkey,switchyard-limited,switchyard-cached[,litellm])")
    args = ap.parse_args()

    if not shutil.which("wrk"):
        sys.exit("wrk not found: `apt-get install wrk` (make bench does it)")
    if os.cpu_count() and os.cpu_count() < 2:
        sys.exit("make bench pins targets and load to separate cores: it needs 2 cores")

    targets = ["upstream", "envoy", "switchyard", "switchyard-vkey", "switchyard-limited", "switchyard-cached",
               "switchyard-logged"]
    if os.environ.get("BENCH_LITELLM") == "1":
        ensure_litellm()
        targets.append("litellm")
    if args.targets:
        targets = args.targets.split(",")

    needed = [(ENVOY, "make setup"), (UPSTREAM, "cargo build --release -p switchyard-bench")]
    if any(t.startswith("switchyard") for t in targets):
        needed += [(SWITCHYARD, "make build"), (WASM, "make build")]
    for path, how in needed:
        if not path.exists():
            sys.exit(f"missing {path}: run `{how}`")
    with_anthropic = "switchyard" in targets and anthropic_supported()
    work = Path(tempfile.mkdtemp(prefix="switchyard-bench-"))
    bodies = {}
    for name, body in BODIES.items():
        bodies[name] = work / f"{name}.json"
        bodies[name].write_text(json.dumps(body))

    up_port = free_port()
    upstream = Proc([UPSTREAM, up_port], LOAD_CPU, work / "upstream.log")
    results = {}
    notes = []
    try:
        wait_http(up_port, "/", proc=upstream.p)
        for target in targets:
            print(f"== {target}", flush=True)
            proc, port, headers = start_target(target, up_port, work, with_anthropic)
            res = results[target] = {}
            try:
                run_wrk(port, "/v1/chat/completions", bodies["chat"], headers, 8, 2)  # warm-up
                loads = {"switchyard-cached": CACHE_LOADS, "switchyard-logged": LOGGED_LOADS}.get(target, LOADS)
                for load, body, conc, path in loads:
                    if body == "anthropic" and (target in ("upstream", "envoy", "litellm") or not with_anthropic):
                        continue
                    if body in SWITCHYARD_ONLY and (target != "switchyard" or (body == "messages" and not with_anthropic)):
                        continue
                    if target in ("switchyard-vkey", "switchyard-limited") and body != "chat":
                        continue  # what a key costs shows on plain chat
                    runs = []
                    for i in range(args.runs):
                        r = run_wrk(port, path, bodies[body], headers, conc, args.duration)
                        runs.append(r)
                        print(f"  {load:15} run {i + 1}: {r['rps']:>9} req/s  p50 {r['p50_ms']:.3f} ms  "
                              f"p99 {r['p99_ms']:.3f} ms  p99.9 {r['p999_ms']:.3f} ms  errors {r['errors']}", flush=True)
                    res[load] = {"runs": runs}
                for i in range(args.runs if target not in ("switchyard-vkey", "switchyard-limited", "switchyard-cached",
                                                           "switchyard-logged") else 0):
                    s = measure_stream(port, "/v1/chat/completions", BODIES["stream"], headers, args.stream_requests)
                    res.setdefault("stream c1 (ttfb/ttlb)", {"runs": []})["runs"].append(s)
                    print(f"  stream c1       run {i + 1}: ttfb p50 {s['ttfb_p50_ms']} ms p99 {s['ttfb_p99_ms']} ms,"
                          f" ttlb p50 {s['ttlb_p50_ms']} ms p99 {s['ttlb_p99_ms']} ms, errors {s['errors']}", flush=True)
                if proc is not None:
                    res["peak_rss_mb"] = proc.peak_rss_mb()
                    print(f"  peak RSS {res['peak_rss_mb']} MB", flush=True)
            finally:
                if proc is not None:
                    proc.stop()
    finally:
        upstream.stop()
    if "switchyard" in targets and not with_anthropic:
        notes.append("anthropic c32 (a request translated to another provider's format) was skipped: "
                     "Switchyard does not serve an Anthropic deployment yet.")

    load_names = [l[0] for l in LOADS + CACHE_LOADS + LOGGED_LOADS]
    rows = []
    for target, res in results.items():
        for load in load_names:
            for i, r in enumerate(res.get(load, {}).get("runs", [])):
                rows.append({"target": target, "load": load, "run": i + 1, "requests": r["requests"], "RPS": r["rps"],
                             "p50 ms": r["p50_ms"], "p90 ms": r["p90_ms"], "p99 ms": r["p99_ms"],
                             "p99.9 ms": r["p999_ms"], "errors": r["errors"], "peak RSS MB": res.get("peak_rss_mb", "")})
    stream_rows = [{"target": t, "run": i + 1, **r}
                   for t, res in results.items() for i, r in enumerate(res.get("stream c1 (ttfb/ttlb)", {}).get("runs", []))]
    ratio_rows = ratios(results, load_names)
    vkey_rows = vkey_ratios(results, load_names)
    cache_rows = cache_ratios(results)
    logged_rows = logged_ratios(results)

    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "duration_s": args.duration, "runs": args.runs, "cpus": os.cpu_count(),
        "pinning": f"targets on CPU {TARGET_CPU} (Envoy --concurrency 1, LiteLLM 1 worker); wrk (1 thread) and the upstream on CPU {LOAD_CPU}",
        "envoy": subprocess.run([ENVOY, "--version"], capture_output=True, text=True).stdout.strip().split("version:")[-1].strip(),
    }
    md = [f"# make bench, {meta['date']}", "", meta["pinning"] + f"; {args.duration} s per run, {args.runs} runs per load.", "",
          "## Throughput and latency", "", fmt_table(rows, list(rows[0].keys()) if rows else ["target"]), "",
          "## Streaming, one request at a time (time to first byte / last byte)", "",
          fmt_table(stream_rows, list(stream_rows[0].keys()) if stream_rows else ["target"]), "",
          "## Switchyard against plain Envoy and LiteLLM (median of the runs)", "",
          fmt_table(ratio_rows, ["load", "added p50 ms", "added p99 ms", "RPS vs envoy", "RPS vs litellm", "p99 vs litellm"]), ""]
    if vkey_rows:
        md += ["## A virtual key against the master key, a rate-limited key against an unlimited one (median of the runs)", "",
               fmt_table(vkey_rows, ["load", "master RPS", "virtual key RPS", "RPS ratio", "added p50 ms", "added p99 ms",
                                     "rate-limited key RPS"]), ""]
    if cache_rows:
        md += ["## The response cache: a hit against a miss, and against no cache (median of the runs)", "",
               fmt_table(cache_rows, ["load", "RPS", "p50 ms", "p99 ms", "RPS vs no cache"]), ""]
    if logged_rows:
        md += ["## The logging callbacks (otel and generic_api, prompts and answers logged) against none (median of the runs)", "",
               fmt_table(logged_rows, ["load", "RPS", "p50 ms", "p99 ms", "RPS vs no callbacks"]), ""]
    md += [f"Note: {n}" for n in notes]
    report = "\n".join(md) + "\n"
    print("\n" + report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = meta["date"].replace(":", "").replace("+0000", "Z")
    (RESULTS / f"bench-{stamp}.json").write_text(json.dumps({"meta": meta, "results": results, "ratios": ratio_rows, "vkey": vkey_rows, "cache": cache_rows, "logged": logged_rows, "notes": notes}, indent=2))
    (RESULTS / f"bench-{stamp}.md").write_text(report)
    (RESULTS / "latest.md").write_text(report)
    print(f"written: bench/results/bench-{stamp}.json, .md and latest.md")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
