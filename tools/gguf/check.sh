#!/usr/bin/env bash
# Held-out quantized GGUF files through the CLI (no test reads them): a random-weight checkpoint of a shape and seed no
# test uses (hidden 256, intermediate 768: real K-quants; the Qwen2.5 tokenizer and vocabulary) is exported to F32 GGUF and quantized
# by llama.cpp's own quantizer into each mix. QWEN2_GGUF_ARCH=qwen3 makes it a Qwen3 checkpoint instead (q_norm/k_norm,
# no biases, untied, head_dim 64 on 8 query heads: q is 512 wide on the 256-wide stream, GQA over 2 kv heads; Qwen3's
# tokenizer, its think and tool-response tags added to the corpus). On each file
#   qwen2 logits            must be within twice llama.cpp's error of the float64 reference on the dequantized weights,
#   qwen2 generate -t 0     must pick, at every step, the reference's argmax or llama.cpp's (over the same sequence),
#   qwen2 tokenize --json-in  must give Hugging Face's ids (Tokenizers.DotNet on tokenizer.json) for tools/aot/corpus.json.
# The greedy rule cannot tell a near tie (the reference's top two closer than the engines' errors) from a bug: a failure
# names the reference's gap at the step.
# Needs src/Qwen2.Cli and bench/Qwen2.Bench built in Release (the bench carries llama.cpp and the reference).
# QWEN2_GGUF_MIXES narrows the mixes; QWEN2_GGUF_CHECK_DIR keeps the files (else a temporary directory is removed, and
# each mix's file goes once it is checked, so the check needs about 330 MB of disk at most: a full disk once made
# llama.cpp's quantizer fail here).
set -euo pipefail
cd "$(dirname "$0")/../.."
qwen2="dotnet src/Qwen2.Cli/bin/Release/net10.0/qwen2.dll"
peer="dotnet bench/Qwen2.Bench/bin/Release/net10.0/Qwen2.Bench.dll"
arch=${QWEN2_GGUF_ARCH:-qwen2}
if [[ -n "${QWEN2_GGUF_CHECK_DIR:-}" ]]; then work=$QWEN2_GGUF_CHECK_DIR; mkdir -p "$work"; else work=$(mktemp -d); trap 'rm -rf "$work"' EXIT; fi
case $arch in
  qwen2)
    tokenizer=src/Qwen2.Cli/Assets/tokenizer/qwen2.5
    synth=(synth-peer "$work/checkpoint" 256 2 4 2 768 20261202)
    extra='[]' ;;
  qwen3)
    tokenizer=tests/fixtures/tokenizer/qwen3
    # The seed is the first from 20261203 on with no near tie on the greedy steps of any mix: on the six before it the
    # reference's top two were 0.0006 to 0.012 apart, under both engines' error (about 0.02), and a flip fails the rule.
    #                                     hidden layers heads kv head_dim inter vocab        tied   bias   dtype seed
    synth=(synth-qwen3 "$work/checkpoint" 256    2      8     2  64       768   "$tokenizer" untied nobias f32   20261209)
    extra='["<|im_start|>assistant\n<think>\nTwo and two make four.\n</think>\n\nIt is 4.<|im_end|>\n", "<tool_response>\n{\"ok\": true}\n</tool_response>"]' ;;
  *) echo "QWEN2_GGUF_ARCH: '$arch' is not qwen2 or qwen3" >&2; exit 2 ;;
esac
mixes=${QWEN2_GGUF_MIXES:-"q8_0 q4_0 q4_1 q5_0 q5_1 q4_k_m q5_k_m q6_k"}
tokens="9707,11,1879,0,2585,525,498,3351"   # "Hello, world! How are you today" in the Qwen2.5 (and Qwen3) vocabulary
steps=6

if [[ ! -f "$work/f32.gguf" ]]; then
  $peer "${synth[@]}"
  $qwen2 export-gguf --model "$work/checkpoint" --out "$work/f32.gguf" --type f32 >/dev/null
  [[ -n "${QWEN2_GGUF_CHECK_DIR:-}" ]] || rm -rf "$work/checkpoint"
fi
gunzip -c "$tokenizer/tokenizer.json.gz" > "$work/tokenizer.json"
python3 -c "import json,sys; json.dump(json.load(open(sys.argv[1])) + json.loads(sys.argv[2]), open(sys.argv[3], 'w'))" tools/aot/corpus.json "$extra" "$work/corpus.json"
$peer hf-tokenize "$work/tokenizer.json" "$work/corpus.json" > "$work/hf-ids.json"

for mix in $mixes; do
  gguf="$work/$mix.gguf"
  # llama.cpp's own log reaches stderr only for warnings and errors (LlamaCpp.Configure), so a failure says why.
  [[ -f "$gguf" ]] || $peer quantize-peer "$work/f32.gguf" "$gguf" "$mix"
  $qwen2 logits --model "$gguf" --tokens "$tokens" > "$work/ours.json"
  greedy=$($qwen2 generate --model "$gguf" --tokens "$tokens" --temperature 0 --max-tokens $steps --output ids --ignore-eos 2>/dev/null)
  sequence="$tokens,$(python3 -c "import json,sys; print(','.join(map(str, json.loads(sys.argv[1]))))" "$greedy")"
  $peer peer-logits "$gguf" "$sequence" 2>/dev/null > "$work/peers.json"
  $qwen2 tokenize --model "$gguf" --json-in "$work/corpus.json" > "$work/ids.json"
  python3 - "$work" "$mix" "$tokens" "$greedy" "$arch" <<'PY'
import json, sys
work, mix, tokens, greedy, arch = sys.argv[1], sys.argv[2], sys.argv[3].split(","), json.loads(sys.argv[4]), sys.argv[5]
load = lambda name: json.load(open(f"{work}/{name}.json"))
peers = load("peers")
ours, llama, ref = load("ours")["logits"], peers["llama"], peers["reference"]
n = len(tokens)
def err(rows):
    assert len(rows) >= n and all(len(a) == len(b) for a, b in zip(rows[:n], ref)), "row counts or widths differ"
    return max(abs(x - y) for a, b in zip(rows[:n], ref) for x, y in zip(a, b))
e_ours, e_llama = err(ours), err(llama)
argmax = lambda row: max(range(len(row)), key=row.__getitem__)
steps = [n - 1 + s for s in range(len(greedy))]
by_ref = all(argmax(ref[p]) == g for p, g in zip(steps, greedy))
by_llama = all(argmax(llama[p]) == g for p, g in zip(steps, greedy))
same_ids = load("ids") == load("hf-ids")
print(f"{arch} {mix}: max |logit - float64 reference| ours {e_ours:.3g}, llama.cpp {e_llama:.3g} (ratio {e_ours / e_llama:.2f}); "
      f"greedy {greedy} {'= reference' if by_ref else ''}{' = llama.cpp' if by_llama else ''}; tokenizer ids {'= Hugging Face' if same_ids else 'DIFFER from Hugging Face'}")
failures = []
if not e_ours <= 2 * e_llama: failures.append(f"our logits are {e_ours:.3g} from the reference, over twice llama.cpp's {e_llama:.3g}")
if not (by_ref or by_llama):
    # How far apart the reference puts its choice and ours where they first part: a gap under the errors above is a near tie.
    k, p, g = next((k, p, g) for k, (p, g) in enumerate(zip(steps, greedy)) if argmax(ref[p]) != g)
    failures.append(f"greedy ids {greedy} are neither the reference's nor llama.cpp's choices "
                    f"(step {k + 1} of {len(greedy)}: the reference scores its {argmax(ref[p])} {max(ref[p]) - ref[p][g]:.3g} above our {g})")
if not same_ids: failures.append("tokenize --json-in ids differ from Hugging Face's")
if failures: sys.exit(f"FAIL {arch} {mix}: " + "; ".join(failures))
PY
  [[ -n "${QWEN2_GGUF_CHECK_DIR:-}" ]] || rm -f "$gguf" "$work/ours.json" "$work/peers.json" "$work/ids.json"
done
echo "quantized $arch GGUF checks passed: $mixes"
