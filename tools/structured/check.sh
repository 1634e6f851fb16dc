#!/usr/bin/env bash
# Held-out structured output through the CLI (no test reads these schemas): each schema in tools/structured/schemas,
# at several temperatures and seeds, through qwen2 generate --json-schema on a random-weight checkpoint with the real
# Qwen2.5 vocabulary; every output must parse and validate (JsonSchema.Net in the bench, a validator this project did
# not write), and the generation must end because the value is complete. Then --json must give a JSON object.
# Needs src/Qwen2.Cli and bench/Qwen2.Bench built in Release.
set -euo pipefail
cd "$(dirname "$0")/../.."
qwen2="dotnet src/Qwen2.Cli/bin/Release/net10.0/qwen2.dll"
peer="dotnet bench/Qwen2.Bench/bin/Release/net10.0/Qwen2.Bench.dll"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
$qwen2 synth --shape tiny --dtype bf16 --out "$work/model" --seed 20261204 >/dev/null
runs=0
for schema in tools/structured/schemas/*.json; do
  for temperature in 0 0.8 1.4; do
    for seed in 1 2; do
      $qwen2 generate -m "$work/model" -p "Answer with the JSON the schema asks for." --json-schema "$schema" -t "$temperature" -s "$seed" -n 600 \
        > "$work/out.json" 2> "$work/err.txt"
      grep -q "stop: EndOfSequence" "$work/err.txt" || { echo "FAIL $schema t=$temperature seed=$seed: did not end on completion: $(tail -1 "$work/err.txt")"; exit 1; }
      $peer validate-json "$schema" "$work/out.json" || { echo "FAIL $schema t=$temperature seed=$seed: $(cat "$work/out.json")"; exit 1; }
      runs=$((runs + 1))
    done
  done
done
# Greedy: json_object leaves string lengths to JsonLimits (4,096 characters), which a random model at a high temperature
# fills, past this budget; the schemas above bound theirs.
$qwen2 generate -m "$work/model" -p "Some JSON." --json -t 0 -n 600 > "$work/out.json" 2> "$work/err.txt"
grep -q "stop: EndOfSequence" "$work/err.txt" || { echo "FAIL --json: did not end on completion"; exit 1; }
python3 -c "import json,sys; v=json.load(open(sys.argv[1])); sys.exit(0 if isinstance(v, dict) else 'FAIL --json: not an object')" "$work/out.json"
echo "held-out structured output checks passed: $runs generations valid and complete, and --json an object"
