#!/usr/bin/env bash
# compare_builds.sh BASE NEW [ENVVAR=VALUE ...]: runs `qwen2 logits` (all positions, and --incremental through the
# cache) and greedy `generate` (with and without the cache) on every fixture and held-out checkpoint with the build in
# checkout NEW and with the build in checkout BASE (a clone at an earlier commit), and compares the outputs byte for
# byte. Both need src/Qwen2.Cli built in Release. Extra arguments are environment settings for both runs, e.g.
# DOTNET_EnableAVX512=0 for the AVX2 path or DOTNET_EnableHWIntrinsic=0 for the scalar one.
set -uo pipefail
base=$1 tree=$2; shift 2
envs=("$@")

out=$(mktemp -d)
fail=0; n=0
run() { # TREEDIR NAME ARGS...
  local t=$1 name=$2; shift 2
  env "${envs[@]}" dotnet "$t/src/Qwen2.Cli/bin/Release/net10.0/qwen2.dll" "$@" > "$out/$name" 2>/dev/null
}
for golden in $base/tests/fixtures/golden/*.json $base/tools/golden/holdout/*.json $base/../shared/fixtures/golden/*.json; do
  name=$(basename "$golden" .json)
  dir=$(dirname "$golden")/../models/$name
  [[ -d $dir ]] || dir="${golden%.json}"
  [[ $golden == $base/../shared/* ]] && dir=$base/../shared/fixtures/models/$name
  tokens=$(python3 -c "import json,sys; print(','.join(map(str, json.load(open(sys.argv[1]))['tokens'])))" "$golden")
  for mode in full incr gen gennc; do
    case $mode in
      full) args=(logits --model "$dir" --tokens "$tokens");;
      incr) args=(logits --model "$dir" --tokens "$tokens" --incremental --threads 1);;
      gen) args=(generate --model "$dir" --tokens "$tokens" --temperature 0 --max-tokens 20 --output ids);;
      gennc) args=(generate --model "$dir" --tokens "$tokens" --temperature 0 --max-tokens 20 --output ids --no-cache);;
    esac
    run "$base" "$name.$mode.base" "${args[@]}"
    run "$tree" "$name.$mode.new" "${args[@]}"
    n=$((n+1))
    if ! cmp -s "$out/$name.$mode.base" "$out/$name.$mode.new" || [[ ! -s $out/$name.$mode.base ]]; then
      echo "DIFFERENT: $name $mode ($(wc -c < "$out/$name.$mode.base") vs $(wc -c < "$out/$name.$mode.new") bytes)"; fail=1
    else
      echo "identical: $name $mode ($(wc -c < "$out/$name.$mode.new") bytes, sha256 $(sha256sum < "$out/$name.$mode.new" | cut -c1-12))"
    fi
  done
done
rm -rf "$out"
((fail)) && { echo "FAIL: outputs differ from BASE's"; exit 1; }
echo "all $n outputs byte-identical to BASE's ${envs[*]}"
