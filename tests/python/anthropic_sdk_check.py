"""The official anthropic SDK against Switchyard's /v1/messages (a bridged deployment).

    python anthropic_sdk_check.py --base-url http://127.0.0.1:4000 --api-key sk-... \
        --model fast [--limited-model busy]

Prints `KEY value` lines the end-to-end test reads, then ALL_DONE. Any failure raises.
"""

import argparse

import anthropic


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--limited-model", help="a model whose provider answers 429")
    args = parser.parse_args()
    client = anthropic.Anthropic(base_url=args.base_url, api_key=args.api_key, max_retries=0)

    ask = [{"role": "user", "content": "Say hello"}]
    message = client.messages.create(
        model=args.model, max_tokens=64, system="Be brief.", messages=ask
    )
    print("TYPE", message.type)
    print("MODEL", message.model)
    print("TEXT", message.content[0].text)
    print("STOP", message.stop_reason)
    print("USAGE", message.usage.input_tokens, message.usage.output_tokens)

    with client.messages.stream(model=args.model, max_tokens=64, messages=ask) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    print("STREAM_TEXT", text)
    print("STREAM_STOP", final.stop_reason)
    print("STREAM_USAGE", final.usage.output_tokens)

    bad = anthropic.Anthropic(base_url=args.base_url, api_key="sk-not-a-key", max_retries=0)
    try:
        bad.messages.create(model=args.model, max_tokens=8, messages=ask)
        print("BAD_KEY accepted")
    except anthropic.AuthenticationError as e:
        print("BAD_KEY AuthenticationError", e.status_code)

    if args.limited_model:
        try:
            client.messages.create(model=args.limited_model, max_tokens=8, messages=ask)
            print("LIMITED accepted")
        except anthropic.RateLimitError as e:
            print("LIMITED RateLimitError", e.status_code)

    models = client.models.list()
    print("MODELS", ",".join(m.id for m in models.data))

    print("ALL_DONE")


if __name__ == "__main__":
    main()
