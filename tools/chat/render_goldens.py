#!/usr/bin/env python3
"""Renders conversations with the real Jinja chat templates, as transformers' apply_chat_template does
(jinja2 sandbox, trim_blocks, lstrip_blocks), and writes tests/fixtures/chat/renders.json for ChatTemplate's tests.

Templates: Qwen2-Instruct's (quoted below, as published in its tokenizer_config.json), Qwen2.5's (the asset file),
and Qwen3's (qwen3-chat-template.jinja, as published: no default system prompt, reasoning dropped from assistant turns
up to the last user query and written back after it, enable_thinking)."""
import json, os, sys
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
QWEN2 = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
         "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
         "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
         "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
def qwen3():
    # Qwen3-0.6B's chat_template as Qwen published it (tools, reasoning and all), from the copy llama.cpp keeps in
    # models/templates/Qwen-Qwen3-0.6B.jinja.
    with open(os.path.join(os.path.dirname(__file__), "qwen3-chat-template.jinja"), encoding="utf-8") as f:
        return f.read()

def qwen25():
    with open(os.path.join(ROOT, "src/Qwen2.Cli/Assets/tokenizer/qwen2.5/tokenizer_config.json"), encoding="utf-8") as f:
        return json.load(f)["chat_template"]

CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a prime."}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"}, {"role": "user", "content": "Tell me a joke."}],
    [{"role": "system", "content": "Answer in French.\nBe brief."}, {"role": "user", "content": "What is 2+2?"},
     {"role": "assistant", "content": "<think>\nsimple sum\n</think>\n\nQuatre."}, {"role": "user", "content": "Et 3+3 ?"}],
    [{"role": "user", "content": ""}],
    [{"role": "user", "content": "  spaces, tabs\t, emoji 👩‍👩‍👧, 汉字, <tool_call> text  \n"}],
    [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
    # Qwen3's reasoning rules: turns after the last query keep their think block, a tool response is not a query.
    [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>\nr1\n\n</think>\n\na1"}],
    [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>\nstep\n</think>\n\ncalling"},
     {"role": "user", "content": "<tool_response>\n42\n</tool_response>"}],
    [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>\nr\n</think>\n\nfirst"},
     {"role": "assistant", "content": "second, no think"}],
    [{"role": "assistant", "content": "<think>\nalone\n</think>\n\nno user at all"}],
    [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<think>a</think>b</think>\n\nc"}, {"role": "user", "content": "again"}],
    # A system message after the first: every Qwen template writes it where it stands (Qwen2.5 still inserts its default first).
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "<think>\nhm\n</think>\n\nHello"}, {"role": "system", "content": "Now answer in German."},
     {"role": "user", "content": "How are you?"}],
    [{"role": "system", "content": "First."}, {"role": "user", "content": "q"}, {"role": "system", "content": "Second."}],
]

# Tool calling (Qwen2.5 and Qwen3; Qwen2's template has none). Tools in OpenAI's form, as transformers passes dicts
# through; tool-call arguments as dicts (vLLM parses OpenAI's argument strings before rendering).
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Get the weather in a city, in °C.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "e.g. \"Paris\""},
                          "days": {"type": "integer", "minimum": 1, "maximum": 7}, "ratio": {"type": "number", "default": 0.5}},
                          "required": ["city"]}}}
CLOCK = {"type": "function", "function": {"name": "now", "description": "The time\nnow.", "parameters": {"type": "object", "properties": {}}}}
def call(name, args):
    return {"type": "function", "function": {"name": name, "arguments": args}}
TOOL_CONVERSATIONS = [
    ([WEATHER], [{"role": "user", "content": "Weather in Paris?"}]),
    ([WEATHER, CLOCK], [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris, and the time?"}]),
    ([WEATHER, CLOCK], [{"role": "user", "content": "Weather in Paris, and the time?"},
      {"role": "assistant", "content": "", "tool_calls": [call("get_weather", {"city": "Paris", "days": 2, "ratio": 1e-05}), call("now", {})]},
      {"role": "tool", "content": "{\"temp\": 21.5}"}, {"role": "tool", "content": "12:00"}]),
    ([WEATHER], [{"role": "user", "content": "Weather in Zürich?"},
      {"role": "assistant", "content": "<think>\nI should call the tool.\n</think>\n\nLet me check.", "tool_calls": [call("get_weather", {"city": "Zürich", "note": "a \"quote\"\n", "list": [1, 2.5, True, None]})]},
      {"role": "tool", "content": "sunny"}, {"role": "assistant", "content": "<think>\nIt is sunny.\n</think>\n\nSunny."}, {"role": "user", "content": "Thanks"}]),
]

def main():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    # transformers' tojson: json.dumps with ensure_ascii=False, default separators, keys in order.
    env.filters["tojson"] = lambda x, indent=None, separators=None, sort_keys=False: json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)
    out = []
    for name, tpl in (("qwen2", QWEN2), ("qwen2.5", qwen25()), ("qwen3", qwen3())):
        t = env.from_string(tpl)
        cases = [(None, c) for c in CONVERSATIONS] + ([] if name == "qwen2" else TOOL_CONVERSATIONS)
        for tools, conv in cases:
            for agp in (True, False):
                for thinking in ((True, False) if name == "qwen3" and agp else (None,)):
                    kw = {} if thinking is None else {"enable_thinking": thinking}
                    entry = {"name": name, "template": tpl, "messages": conv, "add_generation_prompt": agp,
                             "enable_thinking": thinking if thinking is not None else True,
                             "expected": t.render(messages=conv, add_generation_prompt=agp, tools=tools, **kw)}
                    if tools: entry["tools"] = tools
                    out.append(entry)
    path = os.path.join(ROOT, "tests/fixtures/chat/renders.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
    print(f"wrote {len(out)} renders to {path}", file=sys.stderr)

if __name__ == "__main__":
    main()
