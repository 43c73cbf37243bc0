#!/usr/bin/env python3
"""Regenerate config/prices/model_prices.json from LiteLLM's model price map.

Usage:
    python3 tools/update-prices.py LITELLM_JSON --revision "litellm 1.110.2 (...)" \
        [--out config/prices/model_prices.json]

LITELLM_JSON is LiteLLM's model_prices_and_context_window.json (the repository's root file,
or litellm/model_prices_and_context_window_backup.json inside a litellm wheel). Only what
Switchyard's cost needs is kept: chat, completion and embedding models of the providers
Switchyard serves, and the fields below. Aliases (`alias_of`, `aliases`) are expanded the way
LiteLLM expands them. Standard library only. See config/prices/README.md.
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path

# LiteLLM's litellm_provider values of the providers in config/src/provider.rs (keep in step
# with it). Its table also files models under "<provider>-<kind>" (vertex_ai-anthropic_models,
# fireworks_ai-embedding-models): those count as the provider before the first "-".
SERVED = {
    "openai", "text-completion-openai", "custom_openai",
    "azure", "azure_text",
    "groq", "together_ai", "mistral", "deepseek", "fireworks_ai", "openrouter", "xai",
    "perplexity", "hosted_vllm", "vllm", "lm_studio",
    "anthropic", "gemini", "vertex_ai", "vertex_ai_beta", "bedrock", "bedrock_converse",
    "cohere", "cohere_chat", "ollama", "ollama_chat", "huggingface", "databricks",
    "cerebras", "sambanova", "nvidia_nim", "deepinfra",
}
MODES = {"chat", "completion", "embedding"}
PRICE_FIELDS = [
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "output_cost_per_reasoning_token",
]
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "config" / "prices" / "model_prices.json"


def served(provider):
    return isinstance(provider, str) and (
        provider in SERVED or provider.split("-", 1)[0] in SERVED
    )


def expand_aliases(rows):
    """LiteLLM serves an `alias_of` row as the row it names, and each name in a row's `aliases`
    list as that row; an alias never replaces a real row."""
    out = {k: v for k, v in rows.items() if isinstance(v, dict) and "alias_of" not in v}
    for name, row in rows.items():
        if not isinstance(row, dict):
            continue
        target = row.get("alias_of")
        if isinstance(target, str) and target in out and name not in out:
            out[name] = out[target]
    for name, row in list(out.items()):
        for alias in row.get("aliases") or []:
            if isinstance(alias, str) and alias not in out:
                out[alias] = row
    return out


def number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def trim(rows):
    table = {}
    for name, row in expand_aliases(rows).items():
        if not served(row.get("litellm_provider")) or row.get("mode") not in MODES:
            continue
        prices = {f: row[f] for f in PRICE_FIELDS if number(row.get(f))}
        # A row without a token price would only hide the missing price.
        if "input_cost_per_token" not in prices and "output_cost_per_token" not in prices:
            continue
        entry = dict(prices)
        entry["litellm_provider"] = row["litellm_provider"]
        entry["mode"] = row["mode"]
        limit = row.get("max_input_tokens")
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            entry["max_input_tokens"] = limit
        table[name] = entry
    return table


def write(path, source, table):
    # One model a line, sorted: an update's diff shows what changed, model by model.
    lines = ["{", f'"source": {json.dumps(source, sort_keys=True)},', '"models": {']
    names = sorted(table)
    for i, name in enumerate(names):
        comma = "," if i + 1 < len(names) else ""
        lines.append(f"{json.dumps(name)}: {json.dumps(table[name], sort_keys=True)}{comma}")
    lines += ["}", "}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("litellm_json", type=Path, help="LiteLLM's model_prices_and_context_window.json")
    parser.add_argument("--revision", required=True,
                        help="which LiteLLM revision the file is from (commit or release, and its date)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    raw = args.litellm_json.read_bytes()
    rows = json.loads(raw)
    if not isinstance(rows, dict):
        sys.exit(f"{args.litellm_json}: not a JSON object of models")
    table = trim(rows)
    source = {
        "license": "MIT, Copyright (c) 2023 Berri AI",
        "repository": "https://github.com/BerriAI/litellm",
        "revision": args.revision,
        "sha256": hashlib.sha256(raw).hexdigest(),
    }
    write(args.out, source, table)
    modes = {}
    for entry in table.values():
        modes[entry["mode"]] = modes.get(entry["mode"], 0) + 1
    print(f"{args.out}: {len(table)} models of {len(rows)} "
          f"({', '.join(f'{n} {m}' for m, n in sorted(modes.items()))}); "
          f"update the revision in config/prices/README.md")


if __name__ == "__main__":
    main()
