"""Compares `qwen2 logits` JSON (stdin) with a golden file: every position within the tolerance, argmax equal.

usage: qwen2 logits --model DIR --tokens ... | python3 compare.py GOLDEN.json [tolerance]
Exit code 0 when every value is within the tolerance (default 1e-4).
"""
import json, sys
gold = json.load(open(sys.argv[1]))
tol = float(sys.argv[2]) if len(sys.argv) > 2 else 1e-4
got = json.load(sys.stdin)["logits"]
ref = gold["logits"]
assert len(got) == len(ref), f"{len(got)} rows, golden has {len(ref)}"
worst = 0.0
for r, (a, b) in enumerate(zip(got, ref)):
    assert len(a) == len(b), f"row {r}: {len(a)} values, golden has {len(b)}"
    worst = max(worst, max(abs(x - y) for x, y in zip(a, b)))
    assert a.index(max(a)) == b.index(max(b)), f"row {r}: argmax differs"
print(f"{gold['model']}: {len(got)} positions x {len(got[0])} logits, max |diff| = {worst:.3g} (tolerance {tol})")
sys.exit(0 if worst <= tol else 1)
