"""The official anthropic SDK against Switchyard's /v1/messages (any deployment).

    python anthropic_sdk_check.py --base-url http://127.0.0.1:4000 --api-key sk-... \
        --model fast [--limited-model busy] [--limited-prompt marker]

Prints `KEY value` lines the end-to-end test reads, then ALL_DONE. Any failure raises.
"""

import argparse

import anthropic

# The marker makes the fake OpenAI provider call the tool (the strict Anthropic fake calls
# tools anyway).
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city (fake-call-tools)",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--limited-model", help="a model whose provider answers 429")
    parser.add_argument("--limited-prompt", default="Say hello", help="what makes it answer 429")
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

    # A tool call, and its result sent back.
    ask_weather = [{"role": "user", "content": "What is the weather in Paris?"}]
    tooled = client.messages.create(
        model=args.model, max_tokens=256, tools=[WEATHER], messages=ask_weather
    )
    print("TOOL_STOP", tooled.stop_reason)
    calls = [b for b in tooled.content if b.type == "tool_use"]
    if calls:
        print("TOOL_NAME", calls[0].name)
        follow = ask_weather + [
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in tooled.content]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": calls[0].id, "content": "Sunny, 21 C"}]},
        ]
        answer = client.messages.create(
            model=args.model, max_tokens=256, tools=[WEATHER], messages=follow
        )
        print("TOOL_RESULT_STOP", answer.stop_reason)
        print("TOOL_RESULT_TEXT", "".join(b.text for b in answer.content if b.type == "text"))

    counted = client.messages.count_tokens(model=args.model, system="Be brief.", messages=ask)
    print("COUNT", counted.input_tokens)

    bad = anthropic.Anthropic(base_url=args.base_url, api_key="sk-not-a-key", max_retries=0)
    try:
        bad.messages.create(model=args.model, max_tokens=8, messages=ask)
        print("BAD_KEY accepted")
    except anthropic.AuthenticationError as e:
        print("BAD_KEY AuthenticationError", e.status_code)

    if args.limited_model:
        try:
            client.messages.create(
                model=args.limited_model,
                max_tokens=8,
                messages=[{"role": "user", "content": args.limited_prompt}],
            )
            print("LIMITED accepted")
        except anthropic.RateLimitError as e:
            print("LIMITED RateLimitError", e.status_code)

    models = client.models.list()
    print("MODELS", ",".join(m.id for m in models.data))

    print("ALL_DONE")


if __name__ == "__main__":
    main()
