#!/usr/bin/env python3
"""Renders conversations with the real Jinja chat templates, as transformers' apply_chat_template does
(jinja2 sandbox, trim_blocks, lstrip_blocks), and writes tests/fixtures/chat/renders.json for ChatTemplate's tests.

Templates: Qwen2-Instruct's (quoted below, as published in its tokenizer_config.json), Qwen2.5's (the asset file),
and a Qwen3-style template (reconstructed from the published Qwen3 template's plain-chat part: no default system
prompt, reasoning dropped from assistant turns before the last user message, enable_thinking)."""
import json, os, sys
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
QWEN2 = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
         "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
         "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
         "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
QWEN3 = """{%- if messages[0].role == 'system' %}
    {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
{%- endif %}
{%- set ns = namespace(searching=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.searching and message.role == "user" %}
        {%- set ns.searching = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- set content = message.content %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {%- if loop.index0 < ns.last_query_index and '</think>' in content %}
            {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
        {%- endif %}
        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\\n\\n</think>\\n\\n' }}
    {%- endif %}
{%- endif %}"""

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
]

def main():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    out = []
    for name, tpl in (("qwen2", QWEN2), ("qwen2.5", qwen25()), ("qwen3", QWEN3)):
        t = env.from_string(tpl)
        for conv in CONVERSATIONS:
            for agp in (True, False):
                for thinking in ((True, False) if name == "qwen3" and agp else (None,)):
                    kw = {} if thinking is None else {"enable_thinking": thinking}
                    out.append({"name": name, "template": tpl, "messages": conv, "add_generation_prompt": agp,
                                "enable_thinking": thinking if thinking is not None else True,
                                "expected": t.render(messages=conv, add_generation_prompt=agp, tools=None, **kw)})
    path = os.path.join(ROOT, "tests/fixtures/chat/renders.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
    print(f"wrote {len(out)} renders to {path}", file=sys.stderr)

if __name__ == "__main__":
    main()
