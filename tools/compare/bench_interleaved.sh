#!/usr/bin/env bash
# bench_interleaved.sh BASE NEW [PAIRS] [qwen2 bench args...]: runs `qwen2 bench --json` with the build in checkout BASE
# and the build in checkout NEW in turns (BASE, NEW, BASE, NEW, ...), PAIRS times (default 4), so that both see the
# same hour of this machine's moving memory bandwidth, and prints each run and the median of the per-pair ratios
# NEW / BASE for prefill and decode tokens/s. Both need src/Qwen2.Cli built in Release.
set -euo pipefail
base=$1 new=$2 pairs=${3:-4}
shift $(( $# < 3 ? $# : 3 ))
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for ((i = 1; i <= pairs; i++)); do
  for side in base new; do
    tree=$base; [[ $side == new ]] && tree=$new
    dotnet "$tree/src/Qwen2.Cli/bin/Release/net10.0/qwen2.dll" bench --json "$@" > "$out/$side-$i.json"
  done
done
python3 - "$out" "$pairs" <<'PY'
import json, statistics, sys
out, pairs = sys.argv[1], int(sys.argv[2])
runs = [(json.load(open(f"{out}/base-{i}.json")), json.load(open(f"{out}/new-{i}.json"))) for i in range(1, pairs + 1)]
print("| pair | before: prefill tok/s | after: prefill tok/s | before: decode tok/s (share of bandwidth) | after: decode tok/s (share of bandwidth) |")
print("| ---: | ---: | ---: | ---: | ---: |")
for i, (b, n) in enumerate(runs, 1):
    print(f"| {i} | {b['prefill_tokens_per_s']:.1f} | {n['prefill_tokens_per_s']:.1f} | "
          f"{b['decode_tokens_per_s']:.2f} ({b['bandwidth_fraction']:.2f}) | {n['decode_tokens_per_s']:.2f} ({n['bandwidth_fraction']:.2f}) |")
pre = statistics.median(n['prefill_tokens_per_s'] / b['prefill_tokens_per_s'] for b, n in runs)
dec = statistics.median(n['decode_tokens_per_s'] / b['decode_tokens_per_s'] for b, n in runs)
print(f"\nmedian of the per-pair ratios after / before: prefill {pre:.3f}, decode {dec:.3f} "
      f"({runs[0][0]['model_name']}, {runs[0][0]['threads']} threads, {runs[0][0]['isa']}, "
      f"{runs[0][0]['prompt_tokens']}-token prompt, {runs[0][0]['gen_tokens']} decode steps, repeat {runs[0][0]['repeat']})")
PY
