using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

public static unsafe partial class Attention
{
    /// <summary>
    /// One (query, head) row on the Vector256 path for head dimensions that are a multiple of 64: the same operations
    /// in the same order as the generic row (<c>Dot</c> per key, then <c>Axpy</c> per key), so the same bits, without a
    /// call per key: four keys' dot products share each query load, and the output stays in eight registers per
    /// 64-float slab while the values stream past.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void RowV256(ref Job j, float* q, float* o, int kvh, int p, Span<float> scores)
    {
        int d = j.HeadDim, kvRow = j.KvHeads * d, keys = j.Past.Count + j.Cur.Count, offset = kvh * d;
        int visible = 0, pending = 0;
        int* batch = stackalloc int[4];
        for (int k = 0; k < keys; k++)
        {
            if (!j.Mask.IsVisible(p, KeyPosition(ref j, k))) { scores[k] = float.NegativeInfinity; continue; }
            visible++;
            batch[pending++] = k;
            if (pending < 4) continue;
            Scores4(ref j, q, batch, offset, kvRow, scores);
            pending = 0;
        }
        for (int b = 0; b < pending; b++) scores[batch[b]] = Score1(q, KeyRow(ref j, batch[b], kvRow) + offset, d) * j.Scale;
        new Span<float>(o, d).Clear();
        if (visible == 0) return; // nothing to attend to: a zero output rather than 0/0
        var s = scores[..keys];
        int span = VisibleSoftmax(ref j, s, p);
        for (int slab = 0; slab < d; slab += 64) Values8(ref j, s[..span], offset + slab, kvRow, o + slab);
    }

    private static void Scores4(ref Job j, float* q, int* batch, int offset, int kvRow, Span<float> scores)
    {
        float* k0 = KeyRow(ref j, batch[0], kvRow) + offset, k1 = KeyRow(ref j, batch[1], kvRow) + offset;
        float* k2 = KeyRow(ref j, batch[2], kvRow) + offset, k3 = KeyRow(ref j, batch[3], kvRow) + offset;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int i = 0; i < j.HeadDim; i += 8)
        {
            var qv = Vector256.Load(q + i);
            // fma(q, k, a): the operand order of Dot1, so each key's chain is Dot1's.
            a0 = Vector256.FusedMultiplyAdd(qv, Vector256.Load(k0 + i), a0);
            a1 = Vector256.FusedMultiplyAdd(qv, Vector256.Load(k1 + i), a1);
            a2 = Vector256.FusedMultiplyAdd(qv, Vector256.Load(k2 + i), a2);
            a3 = Vector256.FusedMultiplyAdd(qv, Vector256.Load(k3 + i), a3);
        }
        scores[batch[0]] = Vector256.Sum(a0) * j.Scale;
        scores[batch[1]] = Vector256.Sum(a1) * j.Scale;
        scores[batch[2]] = Vector256.Sum(a2) * j.Scale;
        scores[batch[3]] = Vector256.Sum(a3) * j.Scale;
    }

    private static float Score1(float* q, float* key, int d)
    {
        var a = Vector256<float>.Zero;
        for (int i = 0; i < d; i += 8) a = Vector256.FusedMultiplyAdd(Vector256.Load(q + i), Vector256.Load(key + i), a);
        return Vector256.Sum(a);
    }

    /// <summary>o[0..64) = Σ p_k · v_k[offset..offset+64), key by key, each step fma(p, v, o) as Axpy does; zero weights skipped as there.</summary>
    private static void Values8(ref Job j, ReadOnlySpan<float> probs, int offset, int kvRow, float* o)
    {
        Vector256<float> o0 = default, o1 = default, o2 = default, o3 = default, o4 = default, o5 = default, o6 = default, o7 = default;
        for (int k = 0; k < probs.Length; k++)
        {
            float pk = probs[k];
            if (pk == 0) continue;
            float* v = (k < j.Past.Count ? j.Past.Value(k, kvRow) : j.Cur.Value(k - j.Past.Count, kvRow)) + offset;
            var a = Vector256.Create(pk);
            o0 = Vector256.FusedMultiplyAdd(a, Vector256.Load(v), o0);
            o1 = Vector256.FusedMultiplyAdd(a, Vector256.Load(v + 8), o1);
            o2 = Vector256.FusedMultiplyAdd(a, Vector256.Load(v + 16), o2);
            o3 = Vector256.FusedMultiplyAdd(a, Vector256.Load(v + 24), o3);
            o4 = Vector256.FusedMultiplyAdd(a, Vector256.Load(v + 32), o4);
            o5 = Vector256.FusedMultiplyAdd(a, Vector256.Load(v + 40), o5);
            o6 = Vector256.FusedMultiplyAdd(a, Vector256.Load(v + 48), o6);
            o7 = Vector256.FusedMultiplyAdd(a, Vector256.Load(v + 56), o7);
        }
        o0.Store(o); o1.Store(o + 8); o2.Store(o + 16); o3.Store(o + 24);
        o4.Store(o + 32); o5.Store(o + 40); o6.Store(o + 48); o7.Store(o + 56);
    }
}
