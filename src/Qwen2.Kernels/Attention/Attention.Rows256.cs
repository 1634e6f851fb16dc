using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

public static unsafe partial class Attention
{
    /// <summary>
    /// The Vector256 path for head dimensions that are a multiple of 64: a work item takes up to four query heads of
    /// one token that share a kv head, so each key and value vector loaded serves all of them, with no call per key.
    /// Each row still runs the generic row's operations in its order (the q·k chain of <c>Dot</c>, its horizontal
    /// sum, then fma(p, v, o) key by key), so the bits are the same.
    /// </summary>
    private static void RunGrouped256(void* state, int start, int end, int worker)
    {
        ref Job j = ref Unsafe.AsRef<Job>(state);
        int d = j.HeadDim, kvRow = j.KvHeads * d, keys = j.Past.Count + j.Cur.Count;
        float* scores = j.Scratch + (nint)worker * j.ScratchStride;
        float** q = stackalloc float*[GroupHeads];
        float** o = stackalloc float*[GroupHeads];
        for (int item = start; item < end; item++)
        {
            var (kvh, heads, p) = GroupItem(ref j, item, q, o);
            int span = Scores256(ref j, q, kvh * d, kvRow, p, scores, keys);
            if (span == 0)
            {
                for (int r = 0; r < heads; r++) new Span<float>(o[r], d).Clear(); // nothing to attend to: zeros, not 0/0
                continue;
            }
            for (int r = 0; r < heads; r++) VisibleSoftmax(ref j, new Span<float>(scores + r * keys, keys), p);
            for (int slab = 0; slab < d; slab += 16) Values256(ref j, scores, keys, span, kvh * d + slab, kvRow, o, heads, slab);
        }
    }

    /// <summary>
    /// A grouped work item: the token's kv head, how many of its query heads (up to four) it takes, and the token's
    /// position; the rows' query and output pointers go to <paramref name="q"/> and <paramref name="o"/>, spare rows
    /// repeating the last head (they are computed, never stored).
    /// </summary>
    private static (int KvHead, int Heads, int Position) GroupItem(ref Job j, int item, float** q, float** o)
    {
        int d = j.HeadDim, group = j.Heads / j.KvHeads;
        int perToken = j.KvHeads * j.GroupChunks, t = item / perToken, kvh = item % perToken / j.GroupChunks;
        int h0 = kvh * group + item % j.GroupChunks * GroupHeads, heads = Math.Min(GroupHeads, kvh * group + group - h0);
        for (int r = 0; r < GroupHeads; r++)
        {
            int h = h0 + Math.Min(r, heads - 1);
            q[r] = j.Q + ((nint)t * j.Heads + h) * d;
            o[r] = j.Out + ((nint)t * j.Heads + h) * d;
        }
        return (kvh, heads, j.QueryPositions[t]);
    }

    /// <summary>
    /// scores[r · keys + k] = (q_r · key_k) × scale for the four rows, two keys at a time; masked keys get −∞. Returns
    /// one past the last visible key (0: none is visible).
    /// </summary>
    private static int Scores256(ref Job j, float** q, int offset, int kvRow, int p, float* scores, int keys)
    {
        int span = 0, pending = -1;
        for (int k = 0; k < keys; k++)
        {
            if (!j.Mask.IsVisible(p, KeyPosition(ref j, k)))
            {
                for (int r = 0; r < GroupHeads; r++) scores[r * keys + k] = float.NegativeInfinity;
                continue;
            }
            span = k + 1;
            if (pending < 0) { pending = k; continue; }
            Keys2(ref j, q, KeyRow(ref j, pending, kvRow) + offset, KeyRow(ref j, k, kvRow) + offset, scores, keys, pending, k);
            pending = -1;
        }
        if (pending >= 0) Keys2(ref j, q, KeyRow(ref j, pending, kvRow) + offset, null, scores, keys, pending, -1);
        return span;
    }

    /// <summary>Two keys (the second may be null) against four rows: eight chains of fma(q, k, a), as Dot runs each.</summary>
    private static void Keys2(ref Job j, float** q, float* k0, float* k1, float* scores, int keys, int i0, int i1)
    {
        float* q0 = q[0], q1 = q[1], q2 = q[2], q3 = q[3];
        float* k1p = k1 is null ? k0 : k1;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
        for (int i = 0; i < j.HeadDim; i += 8)
        {
            var x = Vector256.Load(k0 + i);
            var y = Vector256.Load(k1p + i);
            var v0 = Vector256.Load(q0 + i);
            a0 = Vector256.FusedMultiplyAdd(v0, x, a0); b0 = Vector256.FusedMultiplyAdd(v0, y, b0);
            var v1 = Vector256.Load(q1 + i);
            a1 = Vector256.FusedMultiplyAdd(v1, x, a1); b1 = Vector256.FusedMultiplyAdd(v1, y, b1);
            var v2 = Vector256.Load(q2 + i);
            a2 = Vector256.FusedMultiplyAdd(v2, x, a2); b2 = Vector256.FusedMultiplyAdd(v2, y, b2);
            var v3 = Vector256.Load(q3 + i);
            a3 = Vector256.FusedMultiplyAdd(v3, x, a3); b3 = Vector256.FusedMultiplyAdd(v3, y, b3);
        }
        float s = j.Scale;
        scores[i0] = Vector256.Sum(a0) * s; scores[keys + i0] = Vector256.Sum(a1) * s;
        scores[2 * keys + i0] = Vector256.Sum(a2) * s; scores[3 * keys + i0] = Vector256.Sum(a3) * s;
        if (k1 is null) return;
        scores[i1] = Vector256.Sum(b0) * s; scores[keys + i1] = Vector256.Sum(b1) * s;
        scores[2 * keys + i1] = Vector256.Sum(b2) * s; scores[3 * keys + i1] = Vector256.Sum(b3) * s;
    }

    /// <summary>
    /// o_r[slab..slab+16) = Σ_k p_r,k · v_k for the rows, key by key as Axpy does. A key is skipped where every row's
    /// weight is 0; where only some are, fma(0, v, o) leaves o's bits as they are (o is never −0: it starts at +0).
    /// </summary>
    private static void Values256(ref Job j, float* p, int keys, int span, int offset, int kvRow, float** o, int rows, int slab)
    {
        Vector256<float> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default, e0 = default, e1 = default;
        for (int k = 0; k < span; k++)
        {
            float p0 = p[k], p1 = p[keys + k], p2 = p[2 * keys + k], p3 = p[3 * keys + k];
            if (p0 == 0 && p1 == 0 && p2 == 0 && p3 == 0) continue;
            float* v = (k < j.Past.Count ? j.Past.Value(k, kvRow) : j.Cur.Value(k - j.Past.Count, kvRow)) + offset;
            var x = Vector256.Load(v);
            var y = Vector256.Load(v + 8);
            var w = Vector256.Create(p0);
            a0 = Vector256.FusedMultiplyAdd(w, x, a0); a1 = Vector256.FusedMultiplyAdd(w, y, a1);
            w = Vector256.Create(p1);
            b0 = Vector256.FusedMultiplyAdd(w, x, b0); b1 = Vector256.FusedMultiplyAdd(w, y, b1);
            w = Vector256.Create(p2);
            c0 = Vector256.FusedMultiplyAdd(w, x, c0); c1 = Vector256.FusedMultiplyAdd(w, y, c1);
            w = Vector256.Create(p3);
            e0 = Vector256.FusedMultiplyAdd(w, x, e0); e1 = Vector256.FusedMultiplyAdd(w, y, e1);
        }
        a0.Store(o[0] + slab); a1.Store(o[0] + slab + 8);
        if (rows > 1) { b0.Store(o[1] + slab); b1.Store(o[1] + slab + 8); }
        if (rows > 2) { c0.Store(o[2] + slab); c1.Store(o[2] + slab + 8); }
        if (rows > 3) { e0.Store(o[3] + slab); e1.Store(o[3] + slab + 8); }
    }
}
