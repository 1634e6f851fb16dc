"""Writes a Qwen2-0.5B-shaped BF16 checkpoint (config.json + model.safetensors, 0.99 GB) with deterministic
small weights, for load, memory and speed measurements. Not for correctness: its logits mean nothing.

usage: python3 synth_qwen2_05b.py OUT_DIR
"""
import json, os, struct, sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
H, I, L, V, heads, kv, hd = 896, 4864, 24, 151936, 14, 2, 64
names = [("model.embed_tokens.weight", [V, H])]
for l in range(L):
    p = f"model.layers.{l}."
    names += [(p + "self_attn.q_proj.weight", [heads * hd, H]), (p + "self_attn.q_proj.bias", [heads * hd]),
              (p + "self_attn.k_proj.weight", [kv * hd, H]), (p + "self_attn.k_proj.bias", [kv * hd]),
              (p + "self_attn.v_proj.weight", [kv * hd, H]), (p + "self_attn.v_proj.bias", [kv * hd]),
              (p + "self_attn.o_proj.weight", [H, heads * hd]), (p + "mlp.gate_proj.weight", [I, H]),
              (p + "mlp.up_proj.weight", [I, H]), (p + "mlp.down_proj.weight", [H, I]),
              (p + "input_layernorm.weight", [H]), (p + "post_attention_layernorm.weight", [H])]
names.append(("model.norm.weight", [H]))
header, offset = {}, 0
for name, shape in names:
    count = 1
    for d in shape:
        count *= d
    header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + 2 * count]}
    offset += 2 * count
hb = json.dumps(header).encode()
hb += b" " * ((8 - len(hb) % 8) % 8)
# BF16 values near +-0.008 (exponent byte 0x3C), signs alternating: finite, and no two rows alike
chunk = bytes(b for i in range(1 << 20) for b in ((i * 37) & 0xFF, 0x3C | (0x80 if i & 1 else 0)))
with open(os.path.join(out, "model.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(hb)))
    f.write(hb)
    left = offset
    while left > 0:
        n = min(left, len(chunk))
        f.write(chunk[:n])
        left -= n
json.dump({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": H, "intermediate_size": I,
           "num_hidden_layers": L, "num_attention_heads": heads, "num_key_value_heads": kv, "vocab_size": V,
           "max_position_embeddings": 32768, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6,
           "tie_word_embeddings": True, "torch_dtype": "bfloat16"}, open(os.path.join(out, "config.json"), "w"), indent=2)
print(f"{out}: {offset / 1e9:.3f} GB of BF16 weights")
