"""Drives Switchyard with the official openai SDK, as a client application would.

Run by the end-to-end test e2e::python_sdk (tests/tests/e2e/python_sdk.rs), which checks the
lines printed here. Exits non-zero on any unexpected exception.

    .venv/bin/python tests/python/openai_sdk_check.py --base-url http://127.0.0.1:4000/v1 \
        --api-key sk-1234 --model MODEL
"""

import argparse
import sys

import openai
from openai import OpenAI


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--model", required=True)
    args = parser.parse_args()

    # No SDK retries: the test must see what Switchyard answered the first time.
    client = OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0, timeout=30)
    messages = [{"role": "user", "content": "Say hello"}]

    reply = client.chat.completions.create(model=args.model, messages=messages)
    print("CHAT_MODEL", reply.model)
    print("CHAT_CONTENT", reply.choices[0].message.content)

    stream = client.chat.completions.create(
        model=args.model,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
    )
    parts, models, usage = [], set(), None
    for chunk in stream:
        models.add(chunk.model)
        if chunk.choices and chunk.choices[0].delta.content:
            print("DELTA", repr(chunk.choices[0].delta.content))
            parts.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            usage = chunk.usage.total_tokens
    print("STREAM_CONTENT", "".join(parts))
    print("STREAM_MODELS", ",".join(sorted(models)))
    print("STREAM_USAGE", usage)

    print("MODELS", ",".join(sorted(m.id for m in client.models.list())))

    wrong = OpenAI(base_url=args.base_url, api_key="sk-wrong-key", max_retries=0, timeout=30)
    try:
        wrong.chat.completions.create(model=args.model, messages=messages)
        print("AUTH_ERROR none")
        return 1
    except openai.AuthenticationError as e:
        print("AUTH_ERROR", e.status_code, type(e).__name__)

    try:
        client.chat.completions.create(model="no-such-model", messages=messages)
        print("BAD_REQUEST none")
        return 1
    except openai.BadRequestError as e:
        print("BAD_REQUEST", e.status_code, type(e).__name__)

    print("ALL_DONE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
