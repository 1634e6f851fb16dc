#!/usr/bin/env python3
"""Derive Qwen2 and Qwen3 tokenizer fixtures from the Qwen2.5 tokenizer (python3 stdlib only).

The three families share the 151,643 byte-level BPE tokens and merges; only the added tokens differ, and Qwen3
writes merges as ["a", "b"] pairs. Writes tests/fixtures/tokenizer/{qwen2,qwen3}/ (tokenizer.json.gz and
tokenizer_config.json). Output is deterministic (gzip mtime 0), so rerunning leaves git clean.

Usage: python3 tools/tokenizer/derive_families.py [path/to/qwen2.5/tokenizer.json(.gz)]
"""
import copy
import gzip
import io
import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_SOURCE = os.path.join(ROOT, "src", "Qwen2.Cli", "Assets", "tokenizer", "qwen2.5", "tokenizer.json.gz")
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")

QWEN2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# ChatML without a default system prompt, with an optional empty think block, like Qwen3's template in spirit.
QWEN3_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return json.loads(data.decode("utf-8"))


def added(id_, content, special):
    return {"id": id_, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": special}


def decoder_entry(tok):
    return {k: tok[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}


def write(family, tokenizer, config):
    folder = os.path.join(OUT, family)
    os.makedirs(folder, exist_ok=True)
    raw = json.dumps(tokenizer, ensure_ascii=False, indent=2).encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        gz.write(raw)
    with open(os.path.join(folder, "tokenizer.json.gz"), "wb") as f:
        f.write(buf.getvalue())
    with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)
        f.write("\n")


def main():
    source = load(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SOURCE)
    base = {t["id"]: t for t in source["added_tokens"]}
    assert base[151643]["content"] == "<|endoftext|>" and len(source["model"]["vocab"]) == 151643, "not the Qwen2.5 tokenizer"

    # Qwen2: only the three ChatML tokens, all special.
    q2 = copy.deepcopy(source)
    q2["added_tokens"] = [added(i, base[i]["content"], True) for i in (151643, 151644, 151645)]
    write("qwen2", q2, {
        "add_prefix_space": False,
        "added_tokens_decoder": {str(t["id"]): decoder_entry(t) for t in q2["added_tokens"]},
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "chat_template": QWEN2_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 32768,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    })

    # Qwen3: Qwen2.5's tokens plus four non-special ones; merges as pairs.
    q3 = copy.deepcopy(source)
    extra = [(151665, "<tool_response>"), (151666, "</tool_response>"), (151667, "<think>"), (151668, "</think>")]
    q3["added_tokens"] = [added(t["id"], t["content"], t["special"]) for t in source["added_tokens"]] + [added(i, c, False) for i, c in extra]
    q3["model"]["merges"] = [m.split(" ") for m in source["model"]["merges"]]
    q3["model"]["ignore_merges"] = False
    write("qwen3", q3, {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {str(t["id"]): decoder_entry(t) for t in q3["added_tokens"]},
        "additional_special_tokens": [t["content"] for t in q3["added_tokens"] if t["special"] and t["id"] != 151643],
        "bos_token": None,
        "chat_template": QWEN3_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    })


if __name__ == "__main__":
    main()
