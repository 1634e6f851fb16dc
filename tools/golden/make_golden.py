"""Makes small Qwen2 checkpoints and golden logits with Hugging Face transformers (the independent reference).

Run where PyTorch and transformers are installed:  python3 make_golden.py OUT_DIR
Each checkpoint is written the way users download one (config.json + safetensors, sharded with an
index for one of them); the reference then reloads the files it wrote and computes in float32 on the
CPU (no TF32), so F16/BF16 weights are compared exactly as stored.
"""
import json, os, sys
import numpy as np
import torch
import transformers
from transformers import Qwen2Config, Qwen2ForCausalLM
from safetensors.torch import save_file

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
OUT = sys.argv[1]
DT = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
DTNAME = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}

BASE = dict(architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_size=64, intermediate_size=176,
            num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=512,
            max_position_embeddings=4096, rope_theta=1000000.0, rms_norm_eps=1e-6, hidden_act="silu",
            tie_word_embeddings=True, bos_token_id=None, eos_token_id=None, use_sliding_window=False,
            sliding_window=4096, max_window_layers=28, attention_dropout=0.0, initializer_range=0.02)

SPECS = {
    # used by the project's tests
    "untied-f16-mha": dict(dtype="f16", seed=11, cfg=dict(num_hidden_layers=3, num_key_value_heads=4, vocab_size=1000,
                                                          tie_word_embeddings=False, rope_theta=10000.0)),
    "headdim-bf16": dict(dtype="bf16", seed=12, cfg=dict(head_dim=32, num_attention_heads=6, num_key_value_heads=2, rms_norm_eps=1e-5)),
    "sliding-f32": dict(dtype="f32", seed=13, prompt=16, cfg=dict(num_hidden_layers=3, use_sliding_window=True,
                                                                  sliding_window=5, max_window_layers=1)),
    "sharded-bf16": dict(dtype="bf16", seed=14, shard="60KB", cfg=dict(num_hidden_layers=3, tie_word_embeddings=False)),
    # held out: never read by a test, checked through the CLI only
    "holdout-untied-f16-mha": dict(dtype="f16", seed=21, cfg=dict(num_hidden_layers=3, num_attention_heads=8, num_key_value_heads=8,
                                                                  vocab_size=1000, tie_word_embeddings=False, hidden_size=96,
                                                                  intermediate_size=200)),
    "holdout-gqa-bf16-sharded": dict(dtype="bf16", seed=22, shard="100KB", prompt=14,
                                     cfg=dict(num_hidden_layers=3, num_attention_heads=6, num_key_value_heads=2,
                                              hidden_size=96, head_dim=24, vocab_size=777, tie_word_embeddings=True,
                                              use_sliding_window=True, sliding_window=6, max_window_layers=2)),
}


def init_weights(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / (p.shape[1] ** 0.5) * 1.5)


def logits_of(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids]), use_cache=False).logits[0].float()


def make(name, spec):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    cfgd = dict(BASE)
    cfgd.update(spec["cfg"])
    cfgd["torch_dtype"] = DTNAME[spec["dtype"]]
    config = Qwen2Config(**{k: v for k, v in cfgd.items() if k not in ("architectures",)})
    torch.manual_seed(spec["seed"])
    model = Qwen2ForCausalLM(config).float()
    init_weights(model, spec["seed"])
    model = model.to(DT[spec["dtype"]])
    if "shard" in spec:
        model.save_pretrained(d, max_shard_size=spec["shard"], safe_serialization=True)
    else:
        sd = {k: v.contiguous() for k, v in model.state_dict().items()}
        if cfgd["tie_word_embeddings"]:
            sd.pop("lm_head.weight", None)
        save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfgd, f, indent=2)
    # the reference reloads what was written, in float32, eager attention
    ref = Qwen2ForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    a0 = ref.model.layers[0].self_attn
    print(name, "files:", sorted(os.listdir(d)), "q_proj", tuple(a0.q_proj.weight.shape), "k_proj", tuple(a0.k_proj.weight.shape),
          "head_dim", a0.head_dim, "layer_types", getattr(ref.config, "layer_types", None),
          "sliding", ref.config.sliding_window, "tied", ref.lm_head.weight.data_ptr() == ref.model.embed_tokens.weight.data_ptr(), flush=True)
    g = torch.Generator().manual_seed(spec["seed"] + 1000)
    n = spec.get("prompt", 12)
    V = cfgd["vocab_size"]
    ids = torch.randint(0, V, (n,), generator=g).tolist()
    ids[3] = V - 1
    ids[5] = 0
    full = logits_of(ref, ids)
    seq, greedy, glog = list(ids), [], []
    for _ in range(20):  # greedy by full recomputation: no cache involved in the reference
        row = logits_of(ref, seq)[-1]
        t = int(torch.argmax(row))
        greedy.append(t); glog.append(row); seq.append(t)
    # the reference's own cached decoding, for the record
    with torch.no_grad():
        out = ref(torch.tensor([ids]), use_cache=True)
        pkv, maxdiff = out.past_key_values, float((out.logits[0] - full).abs().max())
        for i, t in enumerate(greedy[:-1]):
            o = ref(torch.tensor([[t]]), past_key_values=pkv, use_cache=True)
            pkv = o.past_key_values
            maxdiff = max(maxdiff, float((o.logits[0, -1] - glog[i + 1]).abs().max()))
    gold = dict(model=name, reference=f"transformers {transformers.__version__}, torch {torch.__version__}, float32 CPU eager",
                weight_dtype=spec["dtype"], tokens=ids, logits=full.tolist(), greedy=greedy,
                greedy_logits=[r.tolist() for r in glog], cache_vs_full_maxdiff=maxdiff)
    with open(os.path.join(OUT, name + ".golden.json"), "w") as f:
        json.dump(gold, f)
    print(name, "tokens", ids, "greedy", greedy, "absmax", float(full.abs().max()), "cache maxdiff", maxdiff, flush=True)


for k, s in SPECS.items():
    make(k, s)
