using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>
/// Causal grouped-query attention of new queries over past keys (a cache) and the new tokens' own keys:
/// softmax(q·kᵀ/√d + mask)·v in float32, query head h reading kv head h / (heads / kvHeads).
/// Work is split over (query, head) pairs; each pair is computed by one thread in a fixed order.
/// </summary>
public static unsafe partial class Attention
{
    /// <summary>Scratch floats <see cref="Compute"/> needs for <paramref name="keys"/> visible keys on <paramref name="threads"/> threads.</summary>
    public static int ScratchLength(int keys, int threads) => checked(GroupHeads * Math.Max(keys, 1) * Math.Max(threads, 1));

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
        fixed (nint* pages = past.Pages, curPages = current.Pages)
        {
            // A flat block is one page that holds every token; the value offset is the distance between the two spans.
            nint* flatPast = stackalloc nint[1], flatCur = stackalloc nint[1];
            flatPast[0] = (nint)pk; flatCur[0] = (nint)ck;
            var job = new Job
            {
                Q = pq, Out = po, Scratch = ps, ScratchStride = GroupHeads * Math.Max(keys, 1), QueryPositions = qp,
                Past = past.IsPaged ? KvSource.Paged(pages, past.KeyOffset, past.ValueOffset, past.PageShift, pp, past.Count)
                    : KvSource.Flat(flatPast, (nint)(pv - pk), pp, past.Count),
                Cur = current.IsPaged ? KvSource.Paged(curPages, current.KeyOffset, current.ValueOffset, current.PageShift, cp, current.Count)
                    : KvSource.Flat(flatCur, (nint)(cv - ck), cp, current.Count),
                Heads = heads, KvHeads = kvHeads, HeadDim = headDim, Mask = mask,
                Scale = 1f / MathF.Sqrt(headDim), Isa = KernelPath.Record(IsaSupport.Check(isa ?? IsaSupport.Best)),
            };
            if (n >= TileRows && headDim % 64 == 0 && job.Isa == Isa.Vector512)
            {
                ComputeTiled(ref job, n, keys, pool);
                return;
            }
            int work = n * heads;
            bool grouped = job.Isa == Isa.Vector512 && headDim % 16 == 0 && heads / kvHeads >= GroupHeads;
            bool grouped256 = job.Isa == Isa.Vector256 && headDim % 64 == 0;
            if (grouped || grouped256)
            {
                job.GroupChunks = (heads / kvHeads + GroupHeads - 1) / GroupHeads;
                int items = n * kvHeads * job.GroupChunks;
                delegate*<void*, int, int, int, void> run = grouped ? &RunGrouped : &RunGrouped256;
                if (pool is null || (long)work * keys * headDim < 65_536) run(&job, 0, items, 0);
                else pool.Run(run, &job, items);
                return;
            }
            if (pool is null || (long)work * keys * headDim < 65_536) Run(&job, 0, work, 0);
            else pool.Run(&Run, &job, work);
        }
    }

    private static void CheckBlock(KvBlock b, long kvRow, string name)
    {
        if (b.IsPaged)
        {
            if (b.RowFloats != kvRow) throw new ArgumentException($"{name}'s pages hold rows of {b.RowFloats} floats, {kvRow} needed", name);
            return;
        }
        if (b.Keys.Length < b.Count * kvRow || b.Values.Length < b.Count * kvRow)
            throw new ArgumentException($"{name} holds {b.Keys.Length} key and {b.Values.Length} value floats, {b.Count} x {kvRow} needed", name);
    }

    private const int TileRows = 4;

    /// <summary>
    /// A block of queries (prefill) on AVX-512: per kv head, the keys are transposed once to [headDim, keys] so that
    /// scores come out sixteen keys per vector with no horizontal sums, and queries are taken four (query, head) rows
    /// at a time, the rows of one kv head's group being adjacent, so each key and value vector loaded serves four
    /// rows. A tile only reads the new keys up to its last query (causality).
    /// </summary>
    private static void ComputeTiled(ref Job job, int n, int keys, WorkerPool? pool)
    {
        int kpad = (keys + 15) & ~15, threads = pool?.Threads ?? 1;
        int rowsPerKv = n * (job.Heads / job.KvHeads);
        float[] kt = ArrayPool<float>.Shared.Rent(job.KvHeads * job.HeadDim * kpad);
        float[] scores = ArrayPool<float>.Shared.Rent(threads * TileRows * kpad);
        try
        {
            fixed (float* pkt = kt, psc = scores)
            {
                job.KeysT = pkt; job.KeysPad = kpad; job.TileScores = psc;
                job.TilesPerKv = (rowsPerKv + TileRows - 1) / TileRows; job.RowsPerKv = rowsPerKv;
                fixed (Job* pj = &job)
                {
                    if (pool is null) { Transpose(pj, 0, job.KvHeads, 0); RunTiles(pj, 0, job.KvHeads * job.TilesPerKv, 0); }
                    else { pool.Run(&Transpose, pj, job.KvHeads); pool.Run(&RunTiles, pj, job.KvHeads * job.TilesPerKv); }
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(kt);
            ArrayPool<float>.Shared.Return(scores);
        }
    }

    private static float* KeyRow(ref Job j, int k, int kvRow) =>
        k < j.Past.Count ? j.Past.Key(k, kvRow) : j.Cur.Key(k - j.Past.Count, kvRow);

    private static void Transpose(void* state, int start, int end, int worker)
    {
        ref Job j = ref Unsafe.AsRef<Job>(state);
        int d = j.HeadDim, kvRow = j.KvHeads * d, keys = j.Past.Count + j.Cur.Count;
        for (int kvh = start; kvh < end; kvh++)
        {
            float* dst = j.KeysT + (nint)kvh * d * j.KeysPad;
            for (int k = 0; k < keys; k++)
            {
                float* src = KeyRow(ref j, k, kvRow) + kvh * d;
                for (int dd = 0; dd < d; dd++) dst[(nint)dd * j.KeysPad + k] = src[dd];
            }
            for (int dd = 0; dd < d; dd++)
                for (int k = keys; k < j.KeysPad; k++) dst[(nint)dd * j.KeysPad + k] = 0;
        }
    }

    private static void RunTiles(void* state, int start, int end, int worker)
    {
        ref Job j = ref Unsafe.AsRef<Job>(state);
        int d = j.HeadDim, group = j.Heads / j.KvHeads, kvRow = j.KvHeads * d;
        float* scores = j.TileScores + (nint)worker * TileRows * j.KeysPad;
        float** q = stackalloc float*[TileRows];
        float** o = stackalloc float*[TileRows];
        int* pos = stackalloc int[TileRows];
        bool* live = stackalloc bool[TileRows];
        for (int item = start; item < end; item++)
        {
            int kvh = item / j.TilesPerKv, r0 = item % j.TilesPerKv * TileRows, rows = Math.Min(TileRows, j.RowsPerKv - r0);
            for (int r = 0; r < TileRows; r++)
            {
                int row = r0 + Math.Min(r, rows - 1), t = row / group, h = kvh * group + row % group; // spare rows repeat the last one
                q[r] = j.Q + ((nint)t * j.Heads + h) * d;
                o[r] = j.Out + ((nint)t * j.Heads + h) * d;
                pos[r] = j.QueryPositions[t];
            }
            // Keys the tile may see: new keys after the last one at or before its latest query are in every row's future.
            int latest = Math.Max(Math.Max(pos[0], pos[1]), Math.Max(pos[2], pos[3]));
            int candidates = j.Past.Count + j.Cur.Count;
            while (candidates > j.Past.Count && j.Cur.Positions[candidates - 1 - j.Past.Count] > latest) candidates--;
            TileScores(ref j, q, j.KeysT + (nint)kvh * d * j.KeysPad, (candidates + 15) & ~15, scores);
            for (int r = 0; r < rows; r++)
            {
                var s = new Span<float>(scores + (nint)r * j.KeysPad, candidates);
                int visible = 0;
                for (int k = 0; k < candidates; k++)
                {
                    if (j.Mask.IsVisible(pos[r], KeyPosition(ref j, k))) visible++;
                    else s[k] = float.NegativeInfinity;
                }
                live[r] = visible > 0;
                // Each row's own visible span, not the tile's, so its bits do not depend on the rows beside it.
                if (live[r]) VisibleSoftmax(ref j, s, pos[r]);
                else s.Clear(); // nothing to attend to: a zero output rather than 0/0
            }
            for (int slab = 0; slab < d; slab += 64)
                Values64(ref j, scores, j.KeysPad, candidates, kvh * d + slab, kvRow, o, rows, slab);
        }
    }

    /// <summary>scores[r, k] = (q_r · key_k) × scale for four rows and <paramref name="keys"/> keys (a multiple of 16).</summary>
    private static void TileScores(ref Job j, float** q, float* kt, int keys, float* scores)
    {
        int d = j.HeadDim;
        nint pad = j.KeysPad;
        float* q0 = q[0], q1 = q[1], q2 = q[2], q3 = q[3];
        var scale = Vector512.Create(j.Scale);
        for (int kb = 0; kb < keys; kb += 16)
        {
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
            float* col = kt + kb;
            for (int dd = 0; dd < d; dd++)
            {
                var kv = Vector512.Load(col + dd * pad);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Create(q0[dd]), kv, a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Create(q1[dd]), kv, a1);
                a2 = Vector512.FusedMultiplyAdd(Vector512.Create(q2[dd]), kv, a2);
                a3 = Vector512.FusedMultiplyAdd(Vector512.Create(q3[dd]), kv, a3);
            }
            (a0 * scale).Store(scores + kb);
            (a1 * scale).Store(scores + pad + kb);
            (a2 * scale).Store(scores + 2 * pad + kb);
            (a3 * scale).Store(scores + 3 * pad + kb);
        }
    }

    private struct Job
    {
        public float* Q, Out, Scratch, KeysT, TileScores;
        public int* QueryPositions;
        public KvSource Past, Cur;
        public int ScratchStride, GroupChunks, Heads, KvHeads, HeadDim, KeysPad, TilesPerKv, RowsPerKv;
        public AttentionMask Mask;
        public float Scale;
        public Isa Isa;
    }

    /// <summary>Query heads of one kv head that a grouped work item computes together.</summary>
    private const int GroupHeads = 4;

    /// <summary>
    /// Decode on AVX-512 with grouped-query attention: a work item takes up to four query heads that share a kv head,
    /// so each key and value row is loaded once for all of them, four scores are reduced together, and the outputs
    /// stay in registers over all keys instead of being loaded and stored per key.
    /// </summary>
    private static void RunGrouped(void* state, int start, int end, int worker)
    {
        ref Job j = ref Unsafe.AsRef<Job>(state);
        int d = j.HeadDim, kvRow = j.KvHeads * d, keys = j.Past.Count + j.Cur.Count;
        float* scores = j.Scratch + (nint)worker * j.ScratchStride;
        float** q = stackalloc float*[GroupHeads];
        float** o = stackalloc float*[GroupHeads];
        var scale = Vector128.Create(j.Scale);
        for (int item = start; item < end; item++)
        {
            var (kvh, heads, p) = GroupItem(ref j, item, q, o);
            int visible = 0;
            for (int k = 0; k < keys; k++)
            {
                bool isPast = k < j.Past.Count;
                int kp = isPast ? j.Past.Positions[k] : j.Cur.Positions[k - j.Past.Count];
                if (!j.Mask.IsVisible(p, kp))
                {
                    for (int r = 0; r < GroupHeads; r++) scores[r * keys + k] = float.NegativeInfinity;
                    continue;
                }
                visible++;
                float* key = (isPast ? j.Past.Key(k, kvRow) : j.Cur.Key(k - j.Past.Count, kvRow)) + kvh * d;
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (int i = 0; i < d; i += 16)
                {
                    var kv = Vector512.Load(key + i);
                    a0 = Vector512.FusedMultiplyAdd(Vector512.Load(q[0] + i), kv, a0);
                    a1 = Vector512.FusedMultiplyAdd(Vector512.Load(q[1] + i), kv, a1);
                    a2 = Vector512.FusedMultiplyAdd(Vector512.Load(q[2] + i), kv, a2);
                    a3 = Vector512.FusedMultiplyAdd(Vector512.Load(q[3] + i), kv, a3);
                }
                var s = Sum4(a0, a1, a2, a3) * scale;
                scores[k] = s[0]; scores[keys + k] = s[1]; scores[2 * keys + k] = s[2]; scores[3 * keys + k] = s[3];
            }
            if (visible == 0)
            {
                // nothing to attend to: a zero output rather than 0/0
                for (int r = 0; r < heads; r++) new Span<float>(o[r], d).Clear();
                continue;
            }
            int span = keys;
            for (int r = 0; r < heads; r++) span = VisibleSoftmax(ref j, new Span<float>(scores + r * keys, keys), p);
            for (int slab = 0; slab < d; slab += 64)
            {
                if (d - slab >= 64) Values64(ref j, scores, keys, span, kvh * d + slab, kvRow, o, heads, slab);
                else for (int v = slab; v < d; v += 16) GroupValues16(ref j, scores, keys, kvh * d + v, kvRow, o, heads, v);
            }
        }
    }

    /// <summary>Four 16-lane sums at once, as one vector [Σa, Σb, Σc, Σd].</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Sum4(Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> d)
    {
        const byte Even = 0b10_00_10_00, Odd = 0b11_01_11_01; // shufps: [x0, x2, y0, y2] and [x1, x3, y1, y3] per lane
        var ab = System.Runtime.Intrinsics.X86.Avx512F.Shuffle(a, b, Even) + System.Runtime.Intrinsics.X86.Avx512F.Shuffle(a, b, Odd);
        var cd = System.Runtime.Intrinsics.X86.Avx512F.Shuffle(c, d, Even) + System.Runtime.Intrinsics.X86.Avx512F.Shuffle(c, d, Odd);
        var lanes = System.Runtime.Intrinsics.X86.Avx512F.Shuffle(ab, cd, Even) + System.Runtime.Intrinsics.X86.Avx512F.Shuffle(ab, cd, Odd);
        var lo = lanes.GetLower();
        var hi = lanes.GetUpper();
        return (lo.GetLower() + lo.GetUpper()) + (hi.GetLower() + hi.GetUpper());
    }

    /// <summary>
    /// o_r[slab..slab+64) = Σ_k p[r × pStride + k] · v_k[slab..slab+64) for up to four rows (query heads), keys in index
    /// order, accumulated in registers. A key all four rows give probability 0 (masked) is skipped.
    /// </summary>
    private static void Values64(ref Job j, float* p, nint pStride, int keys, int offset, int kvRow, float** o, int rows, int slab)
    {
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default;
        for (int k = 0; k < keys; k++)
        {
            float p0 = p[k], p1 = p[pStride + k], p2 = p[2 * pStride + k], p3 = p[3 * pStride + k];
            if (p0 == 0 && p1 == 0 && p2 == 0 && p3 == 0) continue; // hidden by the mask
            float* v = (k < j.Past.Count ? j.Past.Value(k, kvRow) : j.Cur.Value(k - j.Past.Count, kvRow)) + offset;
            var v0 = Vector512.Load(v); var v1 = Vector512.Load(v + 16); var v2 = Vector512.Load(v + 32); var v3 = Vector512.Load(v + 48);
            var b = Vector512.Create(p0);
            a00 = Vector512.FusedMultiplyAdd(b, v0, a00); a01 = Vector512.FusedMultiplyAdd(b, v1, a01);
            a02 = Vector512.FusedMultiplyAdd(b, v2, a02); a03 = Vector512.FusedMultiplyAdd(b, v3, a03);
            b = Vector512.Create(p1);
            a10 = Vector512.FusedMultiplyAdd(b, v0, a10); a11 = Vector512.FusedMultiplyAdd(b, v1, a11);
            a12 = Vector512.FusedMultiplyAdd(b, v2, a12); a13 = Vector512.FusedMultiplyAdd(b, v3, a13);
            b = Vector512.Create(p2);
            a20 = Vector512.FusedMultiplyAdd(b, v0, a20); a21 = Vector512.FusedMultiplyAdd(b, v1, a21);
            a22 = Vector512.FusedMultiplyAdd(b, v2, a22); a23 = Vector512.FusedMultiplyAdd(b, v3, a23);
            b = Vector512.Create(p3);
            a30 = Vector512.FusedMultiplyAdd(b, v0, a30); a31 = Vector512.FusedMultiplyAdd(b, v1, a31);
            a32 = Vector512.FusedMultiplyAdd(b, v2, a32); a33 = Vector512.FusedMultiplyAdd(b, v3, a33);
        }
        Store(o[0] + slab, a00, a01, a02, a03);
        if (rows > 1) Store(o[1] + slab, a10, a11, a12, a13);
        if (rows > 2) Store(o[2] + slab, a20, a21, a22, a23);
        if (rows > 3) Store(o[3] + slab, a30, a31, a32, a33);

        static void Store(float* dst, Vector512<float> a, Vector512<float> b, Vector512<float> c, Vector512<float> e)
        {
            a.Store(dst); b.Store(dst + 16); c.Store(dst + 32); e.Store(dst + 48);
        }
    }

    /// <summary>The 16-float form of <see cref="Values64"/>, for head dimensions that are not a multiple of 64.</summary>
    private static void GroupValues16(ref Job j, float* p, int keys, int offset, int kvRow, float** o, int heads, int slab)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int k = 0; k < keys; k++)
        {
            float p0 = p[k], p1 = p[keys + k], p2 = p[2 * keys + k], p3 = p[3 * keys + k];
            if (p0 == 0 && p1 == 0 && p2 == 0 && p3 == 0) continue;
            var v = Vector512.Load((k < j.Past.Count ? j.Past.Value(k, kvRow) : j.Cur.Value(k - j.Past.Count, kvRow)) + offset);
            a0 = Vector512.FusedMultiplyAdd(Vector512.Create(p0), v, a0);
            a1 = Vector512.FusedMultiplyAdd(Vector512.Create(p1), v, a1);
            a2 = Vector512.FusedMultiplyAdd(Vector512.Create(p2), v, a2);
            a3 = Vector512.FusedMultiplyAdd(Vector512.Create(p3), v, a3);
        }
        a0.Store(o[0] + slab);
        if (heads > 1) a1.Store(o[1] + slab);
        if (heads > 2) a2.Store(o[2] + slab);
        if (heads > 3) a3.Store(o[3] + slab);
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
            Score(ref j, qh, ref j.Past, kvh * d, kvRow, p, scores, 0, ref visible);
            Score(ref j, qh, ref j.Cur, kvh * d, kvRow, p, scores, j.Past.Count, ref visible);
            oh.Clear();
            if (visible == 0) continue; // nothing to attend to: a zero output rather than 0/0
            var s = scores[..(j.Past.Count + j.Cur.Count)];
            VisibleSoftmax(ref j, s, p);
            Accumulate(ref j.Past, kvh * d, kvRow, s, oh, j.Isa);
            Accumulate(ref j.Cur, kvh * d, kvRow, s[j.Past.Count..], oh, j.Isa);
        }
    }

    /// <summary>
    /// The softmax of a row's scores up to its last visible key, the keys after it (the step's later tokens) set to
    /// zero. A vector softmax's sums depend on the span's length, so a row's bits then do not depend on how many tokens
    /// its step ran after it: a prompt computed in one step, in chunks, or after a cached prefix gives the same logits.
    /// Returns the length of the softmax span.
    /// </summary>
    private static int VisibleSoftmax(ref Job j, Span<float> s, int position)
    {
        int span = s.Length;
        while (span > 0 && !j.Mask.IsVisible(position, KeyPosition(ref j, span - 1))) span--;
        Activations.Softmax(s[..span], j.Isa);
        s[span..].Clear();
        return span;
    }

    private static int KeyPosition(ref Job j, int k) => k < j.Past.Count ? j.Past.Positions[k] : j.Cur.Positions[k - j.Past.Count];

    private static void Score(ref Job j, ReadOnlySpan<float> qh, ref KvSource src, int offset, int kvRow, int p,
        Span<float> scores, int at, ref int visible)
    {
        for (int k = 0; k < src.Count; k++)
        {
            if (!j.Mask.IsVisible(p, src.Positions[k])) { scores[at + k] = float.NegativeInfinity; continue; }
            var key = new ReadOnlySpan<float>(src.Key(k, kvRow) + offset, j.HeadDim);
            scores[at + k] = Dot(qh, key, j.Isa) * j.Scale;
            visible++;
        }
    }

    private static void Accumulate(ref KvSource src, int offset, int kvRow, ReadOnlySpan<float> probs, Span<float> o, Isa isa)
    {
        for (int k = 0; k < src.Count; k++)
        {
            float pk = probs[k];
            if (pk == 0) continue;
            Axpy(pk, new ReadOnlySpan<float>(src.Value(k, kvRow) + offset, o.Length), o, isa);
        }
    }

    /// <summary>q·k on a chosen path (single accumulator, then the scalar tail).</summary>
    internal static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Isa isa) =>
        DotKernels.Dot1<F32Row>(ref Unsafe.As<float, byte>(ref MemoryMarshal.GetReference(a)), ref MemoryMarshal.GetReference(b), a.Length, isa);

    /// <summary>o += a · v.</summary>
    internal static void Axpy(float a, ReadOnlySpan<float> v, Span<float> o, Isa isa) =>
        ElementwiseDriver.Map<AxpyOperator>(ref MemoryMarshal.GetReference(v), ref MemoryMarshal.GetReference(o), ref MemoryMarshal.GetReference(o), o.Length, a, isa);
}

/// <summary>o + a·v: fused in the vector bodies, o + (a·v) rounded twice in the scalar twin.</summary>
internal readonly struct AxpyOperator : IMapOperator
{
    public static Vector512<float> Invoke(Vector512<float> v, Vector512<float> o, Vector512<float> a) => Vector512.FusedMultiplyAdd(a, v, o);
    public static Vector256<float> Invoke(Vector256<float> v, Vector256<float> o, Vector256<float> a) => Vector256.FusedMultiplyAdd(a, v, o);
    public static float Invoke(float v, float o, float a) => o + a * v;
}
