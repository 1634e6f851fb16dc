#!/usr/bin/env bash
# Native AOT check: publish `qwen2` as native AOT with zero trimming/AOT warnings, then hold the AOT binaries to the
# JIT build byte for byte (logits, greedy ids, synthesized checkpoints, tokenizer ids, generated text).
#
# Two binaries, because .NET 10's ILC fixes Vector512/Avx512F.IsSupported at compile time (it never checks AVX-512
# at run time unless AVX-512 is in the baseline):
#   artifacts/aot     the project default, x86-64-v3 (AVX2 + FMA): compared with the JIT on its Vector256 path
#                     (DOTNET_EnableAVX512=0), since the kernels' output depends on the path, not on JIT vs AOT.
#   artifacts/aot-v4  -p:IlcInstructionSet=x86-64-v4 (AVX-512): compared with the JIT as it runs by default; run only
#                     on a CPU with AVX-512 (elsewhere the runtime refuses to start it).
set -euo pipefail
cd "$(dirname "$0")/../.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
start=$SECONDS

# ILC links with clang and needs zlib; python3 reads the golden token lists.
need=()
command -v clang >/dev/null || need+=(clang)
dpkg -s zlib1g-dev >/dev/null 2>&1 || need+=(zlib1g-dev)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
  echo "installing ${need[*]}"
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== JIT build"
dotnet build src/Qwen2.Cli -c Release -v quiet -nologo >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
jit=(dotnet src/Qwen2.Cli/bin/Release/net10.0/qwen2.dll)

# Publishes one AOT binary and fails on any warning line. ILC's intermediate files are removed first: an up-to-date
# ILC step is skipped and would print no warnings at all. Warnings are listed one per site (TrimmerSingleWarn=false)
# and not turned into errors here, so all of them are counted.
publish() { # OUTDIR [extra publish args...]
  local dir=$1 log="$work/publish-$(basename "$1").log"
  shift
  rm -rf src/Qwen2.Cli/obj/Release/net10.0/linux-x64/native
  local t0=$SECONDS
  if ! dotnet publish src/Qwen2.Cli -c Release -r linux-x64 -o "$dir" \
      -p:TrimmerSingleWarn=false -p:IlcTreatWarningsAsErrors=false "$@" >"$log" 2>&1; then
    cat "$log"
    echo "AOT publish failed ($dir)"
    exit 1
  fi
  local warnings
  warnings=$(grep -i 'warning' "$log" | grep -cvE '^\s*0 Warning\(s\)' || true)
  echo "AOT publish: $warnings warnings ($dir, $(stat -c %s "$dir/qwen2") bytes, $((SECONDS - t0)) s)"
  if ((warnings > 0)); then
    grep -i 'warning' "$log" | sort -u
    exit 1
  fi
}

fail=0
# Runs one command with the AOT binary and with the JIT build (JITENV applied) and compares stdout byte for byte.
same() { # NAME ARGS...
  local name=$1
  shift
  # stderr carries timings, which differ from run to run; only stdout is compared.
  "$aot" "$@" >"$work/aot.out" 2>"$work/aot.err" || { cat "$work/aot.err"; echo "FAILED: $name (AOT)"; fail=1; return; }
  env "${jitenv[@]}" "${jit[@]}" "$@" >"$work/jit.out" 2>"$work/jit.err" || { cat "$work/jit.err"; echo "FAILED: $name (JIT)"; fail=1; return; }
  if cmp -s "$work/aot.out" "$work/jit.out"; then
    echo "identical: $name ($(stat -c %s "$work/aot.out") bytes)"
  else
    echo "DIFFERENT: $name"
    cmp "$work/aot.out" "$work/jit.out" || true
    fail=1
  fi
}

compare() { # LABEL
  echo "== $1: $aot against the JIT build${jitenv[*]:+ with ${jitenv[*]}}"
  local aotIsa jitIsa
  aotIsa=$("$aot" cpu | awk '/^kernels/ {print $2}')
  jitIsa=$(env "${jitenv[@]}" "${jit[@]}" cpu | awk '/^kernels/ {print $2}')
  echo "kernel path: AOT $aotIsa, JIT $jitIsa"
  if [[ "$aotIsa" != "$jitIsa" ]]; then echo "DIFFERENT kernel paths"; fail=1; return; fi
  "$aot" cpu | grep -q '^runtime *native AOT' || { echo "$aot does not report native AOT"; fail=1; }

  for fixture in untied-f16-mha sharded-bf16; do
    local dir=tests/fixtures/models/$fixture tokens
    tokens=$(python3 -c "import json,sys; print(','.join(map(str, json.load(open(sys.argv[1]))['tokens'])))" "tests/fixtures/golden/$fixture.json")
    same "logits $fixture" logits --model "$dir" --tokens "$tokens"
    same "logits $fixture --incremental" logits --model "$dir" --tokens "$tokens" --incremental --threads 1
    same "generate $fixture -t 0 -o ids" generate --model "$dir" --tokens "$tokens" -t 0 -n 20 -o ids
  done

  # Synthesis (seeded random weights and the embedded tokenizer), then text in and out on what each wrote.
  "$aot" synth --shape tiny --dtype bf16 --out "$work/synth-aot" --seed 5 >/dev/null
  env "${jitenv[@]}" "${jit[@]}" synth --shape tiny --dtype bf16 --out "$work/synth-jit" --seed 5 >/dev/null
  if diff -r "$work/synth-aot" "$work/synth-jit" >/dev/null; then echo "identical: synth tiny bf16 (every file)"; else echo "DIFFERENT: synth tiny bf16"; fail=1; fi
  local tiny=$work/synth-aot
  same "tokenize --json-in tools/aot/corpus.json" tokenize --model "$tiny" --json-in tools/aot/corpus.json
  same "generate -p TEXT -t 0 (template, decode)" generate --model "$tiny" -p "Give me a short introduction to large language models." -t 0 -n 24
  same "generate --raw -t 0.8 --seed 3 --top-k 40 --top-p 0.9" generate --model "$tiny" --raw -p "Once upon a time" -t 0.8 --seed 3 --top-k 40 --top-p 0.9 -n 24

  # Equality with the JIT could hide a normalization that fails in both; this holds the AOT binary to NFC itself.
  local decomposed composed
  decomposed=$("$aot" tokenize --model "$tiny" --text $'e\u0301')
  composed=$("$aot" tokenize --model "$tiny" --text $'\u00e9')
  if [[ "$decomposed" == "$composed" ]]; then echo "NFC: \"e\\u0301\" and \"\\u00e9\" give the same ids $composed"; else echo "NFC FAILED: $decomposed vs $composed"; fail=1; fi
  rm -rf "$work/synth-aot" "$work/synth-jit"
}

echo "== publish (native AOT, linux-x64)"
publish artifacts/aot
publish artifacts/aot-v4 -p:IlcInstructionSet=x86-64-v4

aot=artifacts/aot/qwen2
jitenv=(DOTNET_EnableAVX512=0)
compare "x86-64-v3"

avx512=1
for flag in avx512f avx512bw avx512cd avx512dq avx512vl; do grep -qw "$flag" /proc/cpuinfo || avx512=0; done
if ((avx512)); then
  aot=artifacts/aot-v4/qwen2
  jitenv=()
  compare "x86-64-v4"
else
  echo "== x86-64-v4: not run (this CPU lacks AVX-512, so the runtime would refuse to start it)"
fi

echo "AOT check: $( ((fail)) && echo FAILED || echo passed ) in $((SECONDS - start)) s"
exit "$fail"
