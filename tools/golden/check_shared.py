"""Cross-checks this reference against the shared golden files (two independent references must agree)."""
import json, sys, torch
from transformers import Qwen2ForCausalLM
for name in ("tiny-f32", "tiny-bf16"):
    m = Qwen2ForCausalLM.from_pretrained(f"{sys.argv[1]}/models/{name}", dtype=torch.float32, attn_implementation="eager").eval()
    g = json.load(open(f"{sys.argv[1]}/golden/{name}.json"))
    with torch.no_grad():
        l = m(torch.tensor([g["tokens"]]), use_cache=False).logits[0]
    print(name, "max |HF - shared golden| =", float((l - torch.tensor(g["logits"])).abs().max()))
