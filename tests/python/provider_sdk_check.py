"""Drives one model of Switchyard with the official openai SDK, as a client application
would, whatever provider serves it: chat with and without a stream, a tool call the SDK
parses, and embeddings. Prints one line per result for the end-to-end test to check; exits
non-zero on any unexpected exception.

    .venv/bin/python tests/python/provider_sdk_check.py --base-url http://127.0.0.1:4000/v1 \
        --api-key sk-1234 --model claude [--tools] [--embeddings-model EMBED_MODEL]
"""

import argparse
import base64
import json
import sys

from openai import OpenAI

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--tools", action="store_true", help="also ask for a tool call")
    parser.add_argument("--embeddings-model", help="also embed two texts with this model")
    args = parser.parse_args()

    # No SDK retries: the test must see what Switchyard answered the first time.
    client = OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0, timeout=30)
    messages = [{"role": "user", "content": "Say hello"}]

    reply = client.chat.completions.create(model=args.model, messages=messages, max_tokens=50)
    print("CHAT_MODEL", reply.model)
    print("CHAT_CONTENT", reply.choices[0].message.content)
    print("CHAT_FINISH", reply.choices[0].finish_reason)
    print("CHAT_USAGE", reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens)

    stream = client.chat.completions.create(
        model=args.model,
        messages=messages,
        max_tokens=50,
        stream=True,
        stream_options={"include_usage": True},
    )
    parts, models, usage, finish = [], set(), None, None
    for chunk in stream:
        models.add(chunk.model)
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
        if chunk.usage is not None:
            usage = chunk.usage.total_tokens
    print("STREAM_CONTENT", "".join(parts))
    print("STREAM_MODELS", ",".join(sorted(models)))
    print("STREAM_FINISH", finish)
    print("STREAM_USAGE", usage)

    if args.tools:
        ask = [{"role": "user", "content": "What is the weather in Paris?"}]
        reply = client.chat.completions.create(
            model=args.model, messages=ask, tools=[WEATHER_TOOL], tool_choice="auto", max_tokens=100
        )
        call = reply.choices[0].message.tool_calls[0]
        print("TOOL_FINISH", reply.choices[0].finish_reason)
        print("TOOL_CALL", call.function.name, json.dumps(json.loads(call.function.arguments), sort_keys=True))
        # The tool's result goes back, as a client finishing the loop would send it.
        followup = ask + [
            reply.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"},
        ]
        reply = client.chat.completions.create(model=args.model, messages=followup, tools=[WEATHER_TOOL], max_tokens=100)
        print("TOOL_RESULT_ANSWER", reply.choices[0].message.content)

        stream = client.chat.completions.create(
            model=args.model, messages=ask, tools=[WEATHER_TOOL], max_tokens=100, stream=True
        )
        name, arguments = None, ""
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.tool_calls:
                delta = chunk.choices[0].delta.tool_calls[0]
                name = name or (delta.function.name if delta.function else None)
                arguments += (delta.function.arguments or "") if delta.function else ""
        print("STREAM_TOOL_CALL", name, json.dumps(json.loads(arguments), sort_keys=True))

    if args.embeddings_model:
        result = client.embeddings.create(model=args.embeddings_model, input=["first text", "second text"])
        print("EMBEDDINGS", len(result.data), len(result.data[0].embedding), result.model)
        b64 = client.embeddings.create(model=args.embeddings_model, input="one", encoding_format="base64")
        # Asked for explicitly, base64 comes back as the text it was sent as: decode it, as
        # a client would, into little-endian f32s.
        raw = b64.data[0].embedding
        floats = len(base64.b64decode(raw)) // 4 if isinstance(raw, str) else len(raw)
        print("EMBEDDINGS_BASE64", floats)

    print("ALL_DONE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
