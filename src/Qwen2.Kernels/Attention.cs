using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>
/// Keys and values of some tokens, stored token-major as [count, kvHeads, headDim], with each token's absolute position.
/// </summary>
public readonly ref struct KvBlock
{
    /// <summary>Keys, [Count, kvHeads, headDim].</summary>
    public readonly ReadOnlySpan<float> Keys;
    /// <summary>Values, [Count, kvHeads, headDim].</summary>
    public readonly ReadOnlySpan<float> Values;
    /// <summary>Absolute position of each token.</summary>
    public readonly ReadOnlySpan<int> Positions;

    /// <summary>Wraps keys, values and positions of <c>positions.Length</c> tokens.</summary>
    public KvBlock(ReadOnlySpan<float> keys, ReadOnlySpan<float> values, ReadOnlySpan<int> positions)
    {
        Keys = keys; Values = values; Positions = positions;
    }

    /// <summary>Number of tokens.</summary>
    public int Count => Positions.Length;
}

/// <summary>
/// Which keys a query sees, by absolute positions: a key at k is visible to a query at p when
/// k ≤ p (causal), k &gt; p − <see cref="Window"/> (sliding-window layers), and, for a cache that overwrites its oldest
/// entries, k &lt; <see cref="SinkTokens"/> or k &gt; p − <see cref="RecentSpan"/>.
/// </summary>
/// <param name="Window">Sliding window of the layer in tokens; <see cref="int.MaxValue"/> for full attention.</param>
/// <param name="SinkTokens">Tokens at the start a ring cache never evicts.</param>
/// <param name="RecentSpan">Most recent tokens a ring cache keeps besides its sinks; <see cref="int.MaxValue"/> when it never evicts.</param>
public readonly record struct AttentionMask(int Window, int SinkTokens, int RecentSpan)
{
    /// <summary>Plain causal attention. (Note that <c>default(AttentionMask)</c> hides every key.)</summary>
    public static AttentionMask Causal { get; } = new(int.MaxValue, 0, int.MaxValue);

    /// <summary>Whether a query at absolute position <paramref name="query"/> sees the key at <paramref name="key"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsVisible(int query, int key) =>
        key <= query && (long)key > (long)query - Window && (key < SinkTokens || (long)key > (long)query - RecentSpan);
}

/// <summary>
/// Causal grouped-query attention of new queries over past keys (a cache) and the new tokens' own keys:
/// softmax(q·kᵀ/√d + mask)·v in float32, query head h reading kv head h / (heads / kvHeads).
/// Work is split over (query, head) pairs; each pair is computed by one thread in a fixed order.
/// </summary>
public static unsafe class Attention
{
    /// <summary>Scratch floats <see cref="Compute"/> needs for <paramref name="keys"/> visible keys on <paramref name="threads"/> threads.</summary>
    public static int ScratchLength(int keys, int threads) => checked(Math.Max(keys, 1) * Math.Max(threads, 1));

    /// <summary>Computes attention for the queries <paramref name="q"/> ([n, heads, headDim]) at <paramref name="queryPositions"/>.</summary>
    /// <param name="q">Queries, already rotated.</param>
    /// <param name="queryPositions">Absolute position of each query.</param>
    /// <param name="heads">Query heads.</param>
    /// <param name="kvHeads">Key/value heads; must divide <paramref name="heads"/>.</param>
    /// <param name="headDim">Dimension of a head.</param>
    /// <param name="past">Keys and values held before this call (may be empty).</param>
    /// <param name="current">The new tokens' keys and values.</param>
    /// <param name="mask">Visibility by absolute positions.</param>
    /// <param name="output">[n, heads, headDim], heads concatenated head-major.</param>
    /// <param name="scratch">At least <see cref="ScratchLength"/>(past.Count + current.Count, threads) floats.</param>
    /// <param name="pool">Threads; <c>null</c> runs on the caller.</param>
    /// <param name="isa">Kernel path; <c>null</c> picks the best.</param>
    public static void Compute(ReadOnlySpan<float> q, ReadOnlySpan<int> queryPositions, int heads, int kvHeads, int headDim,
        KvBlock past, KvBlock current, AttentionMask mask, Span<float> output, Span<float> scratch, WorkerPool? pool = null, Isa? isa = null)
    {
        int n = queryPositions.Length;
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0) throw new ArgumentException($"{heads} query heads cannot be grouped over {kvHeads} kv heads");
        long qLen = (long)n * heads * headDim, kvRow = (long)kvHeads * headDim;
        if (q.Length < qLen) throw new ArgumentException($"q holds {q.Length} floats, {qLen} needed", nameof(q));
        if (output.Length < qLen) throw new ArgumentException($"output holds {output.Length} floats, {qLen} needed", nameof(output));
        CheckBlock(past, kvRow, nameof(past));
        CheckBlock(current, kvRow, nameof(current));
        int threads = pool?.Threads ?? 1, keys = past.Count + current.Count;
        if (scratch.Length < ScratchLength(keys, threads)) throw new ArgumentException($"scratch holds {scratch.Length} floats, {ScratchLength(keys, threads)} needed", nameof(scratch));
        fixed (float* pq = q, po = output, ps = scratch, pk = past.Keys, pv = past.Values, ck = current.Keys, cv = current.Values)
        fixed (int* qp = queryPositions, pp = past.Positions, cp = current.Positions)
        {
            var job = new Job
            {
                Q = pq, Out = po, Scratch = ps, ScratchStride = Math.Max(keys, 1), QueryPositions = qp,
                PastK = pk, PastV = pv, PastPos = pp, PastCount = past.Count,
                CurK = ck, CurV = cv, CurPos = cp, CurCount = current.Count,
                Heads = heads, KvHeads = kvHeads, HeadDim = headDim, Mask = mask,
                Scale = 1f / MathF.Sqrt(headDim), Isa = IsaSupport.Check(isa ?? IsaSupport.Best),
            };
            int work = n * heads;
            if (pool is null || (long)work * keys * headDim < 65_536) Run(&job, 0, work, 0);
            else pool.Run(&Run, &job, work);
        }
    }

    private static void CheckBlock(KvBlock b, long kvRow, string name)
    {
        if (b.Keys.Length < b.Count * kvRow || b.Values.Length < b.Count * kvRow)
            throw new ArgumentException($"{name} holds {b.Keys.Length} key and {b.Values.Length} value floats, {b.Count} x {kvRow} needed", name);
    }

    private struct Job
    {
        public float* Q, Out, Scratch, PastK, PastV, CurK, CurV;
        public int* QueryPositions, PastPos, CurPos;
        public int ScratchStride, PastCount, CurCount, Heads, KvHeads, HeadDim;
        public AttentionMask Mask;
        public float Scale;
        public Isa Isa;
    }

    private static void Run(void* state, int start, int end, int worker)
    {
        ref Job j = ref Unsafe.AsRef<Job>(state);
        int d = j.HeadDim, group = j.Heads / j.KvHeads, kvRow = j.KvHeads * d;
        var scores = new Span<float>(j.Scratch + (nint)worker * j.ScratchStride, j.ScratchStride);
        for (int item = start; item < end; item++)
        {
            int t = item / j.Heads, h = item % j.Heads, kvh = h / group, p = j.QueryPositions[t];
            var qh = new ReadOnlySpan<float>(j.Q + ((nint)t * j.Heads + h) * d, d);
            var oh = new Span<float>(j.Out + ((nint)t * j.Heads + h) * d, d);
            int visible = 0;
            Score(ref j, qh, j.PastK, j.PastPos, j.PastCount, kvh * d, kvRow, p, scores, 0, ref visible);
            Score(ref j, qh, j.CurK, j.CurPos, j.CurCount, kvh * d, kvRow, p, scores, j.PastCount, ref visible);
            oh.Clear();
            if (visible == 0) continue; // nothing to attend to: a zero output rather than 0/0
            var s = scores[..(j.PastCount + j.CurCount)];
            Activations.Softmax(s, j.Isa);
            Accumulate(j.PastV, j.PastCount, kvh * d, kvRow, s, oh, j.Isa);
            Accumulate(j.CurV, j.CurCount, kvh * d, kvRow, s[j.PastCount..], oh, j.Isa);
        }
    }

    private static void Score(ref Job j, ReadOnlySpan<float> qh, float* keys, int* positions, int count, int offset, int kvRow, int p,
        Span<float> scores, int at, ref int visible)
    {
        for (int k = 0; k < count; k++)
        {
            if (!j.Mask.IsVisible(p, positions[k])) { scores[at + k] = float.NegativeInfinity; continue; }
            var key = new ReadOnlySpan<float>(keys + (nint)k * kvRow + offset, j.HeadDim);
            scores[at + k] = Dot(qh, key, j.Isa) * j.Scale;
            visible++;
        }
    }

    private static void Accumulate(float* values, int count, int offset, int kvRow, ReadOnlySpan<float> probs, Span<float> o, Isa isa)
    {
        for (int k = 0; k < count; k++)
        {
            float pk = probs[k];
            if (pk == 0) continue;
            Axpy(pk, new ReadOnlySpan<float>(values + (nint)k * kvRow + offset, o.Length), o, isa);
        }
    }

    /// <summary>q·k on a chosen path (single accumulator, then the scalar tail).</summary>
    internal static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Isa isa) =>
        DotKernels.Dot1<F32Row>(ref Unsafe.As<float, byte>(ref MemoryMarshal.GetReference(a)), ref MemoryMarshal.GetReference(b), a.Length, isa);

    /// <summary>o += a · v.</summary>
    internal static void Axpy(float a, ReadOnlySpan<float> v, Span<float> o, Isa isa)
    {
        ref float pv = ref MemoryMarshal.GetReference(v);
        ref float po = ref MemoryMarshal.GetReference(o);
        int n = o.Length;
        nint i = 0;
        if (isa == Isa.Vector512)
        {
            var av = Vector512.Create(a);
            for (; i <= n - 16; i += 16)
                Vector512.FusedMultiplyAdd(av, Vector512.LoadUnsafe(ref pv, (nuint)i), Vector512.LoadUnsafe(ref po, (nuint)i)).StoreUnsafe(ref po, (nuint)i);
        }
        if (isa >= Isa.Vector256)
        {
            var av = Vector256.Create(a);
            for (; i <= n - 8; i += 8)
                Vector256.FusedMultiplyAdd(av, Vector256.LoadUnsafe(ref pv, (nuint)i), Vector256.LoadUnsafe(ref po, (nuint)i)).StoreUnsafe(ref po, (nuint)i);
        }
        for (; i < n; i++) Unsafe.Add(ref po, i) += a * Unsafe.Add(ref pv, i);
    }
}
