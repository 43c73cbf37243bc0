"""The official openai SDK's Responses API against Switchyard's /v1/responses (any deployment).

    python responses_sdk_check.py --base-url http://127.0.0.1:4000/v1 --api-key sk-... --model fast

Prints `KEY value` lines the end-to-end test reads, then ALL_DONE. Any failure raises.
"""

import argparse

import openai


WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--model", required=True)
    args = parser.parse_args()
    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0)

    r = client.responses.create(model=args.model, input="Say hello", instructions="Be brief.")
    print("OBJECT", r.object)
    print("STATUS", r.status)
    print("MODEL", r.model)
    print("TEXT", r.output_text)
    print("USAGE", r.usage.total_tokens)

    kinds, text, completed = [], "", None
    for event in client.responses.create(model=args.model, input="Say hello", stream=True):
        kinds.append(event.type)
        if event.type == "response.output_text.delta":
            text += event.delta
        if event.type == "response.completed":
            completed = event.response
    print("FIRST_EVENT", kinds[0])
    print("LAST_EVENT", kinds[-1])
    print("STREAM_TEXT", text)
    print("STREAM_COMPLETED_TEXT", completed.output_text)

    tooled = client.responses.create(
        model=args.model,
        input=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER],
        tool_choice="auto",
    )
    print("TOOLS_STATUS", tooled.status)
    calls = [item for item in tooled.output if item.type == "function_call"]
    if calls:
        print("TOOL_CALL", calls[0].name, calls[0].arguments)

    # A conversation goes on where its responses are stored (several times: a group of
    # several deployments would otherwise spread it).
    try:
        for _ in range(4):
            again = client.responses.create(
                model=args.model, input="Again", previous_response_id=r.id
            )
        print("PREVIOUS accepted", "same" if again.previous_response_id == r.id else again.previous_response_id)
    except openai.BadRequestError as e:
        print("PREVIOUS BadRequestError", e.status_code)

    # A stored response, read and deleted where it is stored.
    try:
        got = client.responses.retrieve(r.id)
        print("RETRIEVED", "same" if got.id == r.id else got.id, got.output_text)
        items = client.responses.input_items.list(r.id)
        print("INPUT_ITEMS", len(items.data))
        client.responses.delete(r.id)
        print("DELETED", r.id == got.id)
    except openai.NotFoundError as e:
        print("RETRIEVED NotFoundError", e.status_code)

    print("ALL_DONE")


if __name__ == "__main__":
    main()
