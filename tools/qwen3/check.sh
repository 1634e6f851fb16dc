#!/usr/bin/env bash
# Held-out Qwen3 checkpoints through the CLI (no test reads them): random weights, in shapes no test uses, each with
# its golden file made by the float64 reference (tests/Qwen2.Reference, written from transformers' modeling_qwen3.py):
#   qwen2 logits (one call, and token by token with --incremental)  within 1e-4 of the reference at every position,
#   qwen2 generate --tokens ... -t 0 -o ids (with and without the cache)  the reference's greedy ids exactly.
# Needs src/Qwen2.Cli and bench/Qwen2.Bench built in Release (the bench carries the reference).
set -euo pipefail
cd "$(dirname "$0")/../.."
qwen2="dotnet src/Qwen2.Cli/bin/Release/net10.0/qwen2.dll"
peer="dotnet bench/Qwen2.Bench/bin/Release/net10.0/Qwen2.Bench.dll"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
tokens="3,17,256,999,42,7,500,128,64,900,11"
steps=12
#          name                          hidden layers heads kv head_dim inter vocab tied    bias   dtype seed
shapes=("holdout-qwen3-headdim-gqa       96     2      3     1  48       256   1000  tied    nobias bf16  101"
        "holdout-qwen3-untied-mha-bias   64     3      4     4  24       160   1200  untied  bias   f32   102"
        "holdout-qwen3-f16-bias-gqa      128    2      8     2  32       320   1100  tied    bias   f16   103")
for spec in "${shapes[@]}"; do
  read -r name hidden layers heads kv headdim inter vocab tied bias dtype seed <<<"$spec"
  dir="$work/$name"
  $peer synth-qwen3 "$dir" "$hidden" "$layers" "$heads" "$kv" "$headdim" "$inter" "$vocab" "$tied" "$bias" "$dtype" "$seed" 2>/dev/null
  $peer reference-golden "$dir" "$tokens" $steps > "$work/golden.json"
  $qwen2 logits --model "$dir" --tokens "$tokens" | python3 tools/golden/compare.py "$work/golden.json"
  $qwen2 logits --model "$dir" --tokens "$tokens" --incremental --threads 1 | python3 tools/golden/compare.py "$work/golden.json"
  for mode in "" "--no-cache"; do
    got=$($qwen2 generate --model "$dir" --tokens "$tokens" --temperature 0 --max-tokens $steps --output ids --ignore-eos $mode 2>/dev/null)
    python3 -c "import json,sys; g=json.load(open(sys.argv[1]))['greedy']; o=json.loads(sys.argv[2]); sys.exit(0 if o==g else f'greedy ids differ: {o} vs reference {g}')" "$work/golden.json" "$got"
    echo "greedy ids equal the reference's $steps tokens: $name ${mode:-(cache)}"
  done
done
# A held-out Qwen3-Embedding checkpoint (base-model names, no head, sentence-transformers' files, <|endoftext|> appended
# by its tokenizer.json): qwen2 embed against Hugging Face's tokenizer and the float64 reference's embeddings, whole and
# truncated to 32 dimensions.
dir="$work/holdout-qwen3-embedding"
$peer synth-qwen3 "$dir" 96 2 3 1 48 256 tests/fixtures/tokenizer/qwen3 untied nobias bf16 104 embedding 2>/dev/null
for dims in "" 32; do
  $peer reference-embed "$dir" tools/aot/corpus.json $dims > "$work/reference-embed.json"
  $qwen2 embed --model "$dir" --json-in tools/aot/corpus.json ${dims:+--dimensions $dims} > "$work/embed.json"
  python3 - "$work" "${dims:-all}" <<'PY'
import json, math, sys
work, dims = sys.argv[1], sys.argv[2]
ours, ref = json.load(open(f"{work}/embed.json")), json.load(open(f"{work}/reference-embed.json"))
assert ours["tokens"] == [len(t) for t in ref["tokens"]], f"token counts {ours['tokens']} differ from Hugging Face's {[len(t) for t in ref['tokens']]}"
worst, cos_min = 0.0, 1.0
for a, b in zip(ours["embeddings"], ref["embeddings"]):
    assert len(a) == len(b), f"{len(a)} dimensions, the reference {len(b)}"
    worst = max(worst, max(abs(x - y) for x, y in zip(a, b)))
    cos_min = min(cos_min, sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b)))
print(f"qwen2 embed ({dims} dimensions, {len(ref['embeddings'])} texts): max |ours - float64 reference| {worst:.3g}, min cosine {cos_min:.8f}")
if not (worst <= 1e-4 and cos_min >= 0.99999): sys.exit("FAIL: embeddings differ from the reference's beyond 1e-4 / cosine 0.99999")
PY
done
echo "held-out Qwen3 checks passed"
