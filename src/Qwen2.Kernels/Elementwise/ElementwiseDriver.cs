using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>
/// The loops every element-wise kernel shares, once per kernel shape: an operator struct supplies a Vector512, a
/// Vector256 and a scalar body; the driver runs full vectors of the requested width and finishes the tail. The span
/// entry validates, resolves the <see cref="Isa"/> and records it (<see cref="KernelPath"/>); kernels that call the
/// loops over references (per row, per key) validate and record once per call themselves, so an inner loop never
/// pays for the record.
/// </summary>
internal static class ElementwiseDriver
{
    /// <summary>
    /// The span form of <c>Map</c> over references: checks that a, b and
    /// y have one length (naming a and b as the public kernel does) and resolves the path (<c>null</c>: the best).
    /// </summary>
    public static void Map<TOp>(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y, float s, Isa? isa, string aName, string bName)
        where TOp : IMapOperator
    {
        if (b.Length != a.Length || y.Length != a.Length) throw new ArgumentException($"{aName} ({a.Length}), {bName} ({b.Length}) and y ({y.Length}) must have one length");
        Map<TOp>(ref MemoryMarshal.GetReference(a), ref MemoryMarshal.GetReference(b), ref MemoryMarshal.GetReference(y), a.Length, s,
            KernelPath.Record(IsaSupport.Check(isa ?? IsaSupport.Best)));
    }

    /// <summary>
    /// <see cref="Map{TOp}(ReadOnlySpan{float}, ReadOnlySpan{float}, Span{float}, float, Isa?, string, string)"/> split
    /// over <paramref name="pool"/> when the spans are long (a prefill's MLP rows): chunks of whole 16-element steps,
    /// so every element meets the same vector width, and only the last chunk a tail, as in one call; the bits are those
    /// of one call.
    /// </summary>
    public static unsafe void Map<TOp>(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> y, float s, Isa? isa, WorkerPool? pool,
        string aName, string bName) where TOp : IMapOperator
    {
        if (pool is null || pool.Threads == 1 || a.Length < 2 * ParallelChunk)
        {
            Map<TOp>(a, b, y, s, isa, aName, bName);
            return;
        }
        if (b.Length != a.Length || y.Length != a.Length) throw new ArgumentException($"{aName} ({a.Length}), {bName} ({b.Length}) and y ({y.Length}) must have one length");
        var path = KernelPath.Record(IsaSupport.Check(isa ?? IsaSupport.Best));
        fixed (float* pa = a, pb = b, py = y)
        {
            var job = new MapJob { A = pa, B = pb, Y = py, N = a.Length, S = s, Isa = path };
            pool.RunChunked(&RunMap<TOp>, &job, (a.Length + ParallelChunk - 1) / ParallelChunk);
        }
    }

    // Elements per chunk of a parallel Map: a multiple of every vector step, and enough work to be worth a thread.
    private const int ParallelChunk = 4096;

    private unsafe struct MapJob
    {
        public float* A, B, Y;
        public nint N;
        public float S;
        public Isa Isa;
    }

    private static unsafe void RunMap<TOp>(void* state, int start, int end, int worker) where TOp : IMapOperator
    {
        ref MapJob job = ref Unsafe.AsRef<MapJob>(state);
        nint from = (nint)start * ParallelChunk, to = Math.Min(job.N, (nint)end * ParallelChunk);
        Map<TOp>(ref job.A[from], ref job.B[from], ref job.Y[from], to - from, job.S, job.Isa);
    }

    /// <summary>
    /// y[i] = TOp(a[i], b[i], s) for i &lt; n, element by element, so y may alias a or b. Vector512 runs 16 lanes at a
    /// time, then one step of 8; Vector256 runs 8 at a time; the rest is scalar. A <see cref="IMapOperator.VectorTail"/>
    /// operator finishes with one zero-padded vector instead: of 512 bits after any full 512-bit vector, else of 256
    /// (the widths TensorPrimitives gives such elements, which keeps softmax's bits).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Map<TOp>(ref float a, ref float b, ref float y, nint n, float s, Isa isa) where TOp : IMapOperator
    {
        nint i = 0;
        if (isa == Isa.Vector512)
        {
            var s512 = Vector512.Create(s);
            for (; i <= n - 16; i += 16)
                TOp.Invoke(Vector512.LoadUnsafe(ref a, (nuint)i), Vector512.LoadUnsafe(ref b, (nuint)i), s512).StoreUnsafe(ref y, (nuint)i);
            if (TOp.VectorTail && i > 0 && i < n)
            {
                Span<float> t = stackalloc float[3 * 16];
                int count = Pad(ref a, ref b, i, n, t);
                TOp.Invoke(Vector512.Create((ReadOnlySpan<float>)t), Vector512.Create((ReadOnlySpan<float>)t[16..]), s512).CopyTo(t[32..]);
                Unpad(t[32..], ref y, i, count);
                return;
            }
        }
        if (isa != Isa.Scalar)
        {
            var s256 = Vector256.Create(s);
            // Two vectors a step on the Vector256 path give the long Exp chains room to overlap (16 floats at a time).
            for (; isa == Isa.Vector256 && i <= n - 16; i += 16)
            {
                var r0 = TOp.Invoke(Vector256.LoadUnsafe(ref a, (nuint)i), Vector256.LoadUnsafe(ref b, (nuint)i), s256);
                var r1 = TOp.Invoke(Vector256.LoadUnsafe(ref a, (nuint)(i + 8)), Vector256.LoadUnsafe(ref b, (nuint)(i + 8)), s256);
                r0.StoreUnsafe(ref y, (nuint)i);
                r1.StoreUnsafe(ref y, (nuint)(i + 8));
            }
            for (; i <= n - 8; i += 8)
                TOp.Invoke(Vector256.LoadUnsafe(ref a, (nuint)i), Vector256.LoadUnsafe(ref b, (nuint)i), s256).StoreUnsafe(ref y, (nuint)i);
            if (TOp.VectorTail && i < n)
            {
                Span<float> t = stackalloc float[3 * 16];
                int count = Pad(ref a, ref b, i, n, t);
                TOp.Invoke(Vector256.Create((ReadOnlySpan<float>)t), Vector256.Create((ReadOnlySpan<float>)t[16..]), s256).CopyTo(t[32..]);
                Unpad(t[32..], ref y, i, count);
                return;
            }
        }
        for (; i < n; i++) Unsafe.Add(ref y, i) = TOp.Invoke(Unsafe.Add(ref a, i), Unsafe.Add(ref b, i), s);
    }

    /// <summary>Copies a[i..n) and b[i..n) (fewer than 16 each) to t[0..16) and t[16..32), zero-padded; returns n − i.</summary>
    private static int Pad(ref float a, ref float b, nint i, nint n, Span<float> t)
    {
        int count = (int)(n - i);
        t[..32].Clear();
        for (int k = 0; k < count; k++) { t[k] = Unsafe.Add(ref a, i + k); t[16 + k] = Unsafe.Add(ref b, i + k); }
        return count;
    }

    private static void Unpad(ReadOnlySpan<float> r, ref float y, nint i, int count)
    {
        for (int k = 0; k < count; k++) Unsafe.Add(ref y, i + k) = r[k];
    }

    /// <summary>(a[j], b[j]) = TOp(a[j], b[j], c[j], s[j]) for j &lt; n, with the widths taken as in <c>Map</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MapPairs<TOp>(ref float a, ref float b, ref float c, ref float s, nint n, Isa isa) where TOp : IPairOperator
    {
        nint j = 0;
        if (isa == Isa.Vector512)
        {
            for (; j <= n - 16; j += 16)
            {
                var (ra, rb) = TOp.Invoke(Vector512.LoadUnsafe(ref a, (nuint)j), Vector512.LoadUnsafe(ref b, (nuint)j),
                    Vector512.LoadUnsafe(ref c, (nuint)j), Vector512.LoadUnsafe(ref s, (nuint)j));
                ra.StoreUnsafe(ref a, (nuint)j);
                rb.StoreUnsafe(ref b, (nuint)j);
            }
        }
        if (isa != Isa.Scalar)
        {
            for (; j <= n - 8; j += 8)
            {
                var (ra, rb) = TOp.Invoke(Vector256.LoadUnsafe(ref a, (nuint)j), Vector256.LoadUnsafe(ref b, (nuint)j),
                    Vector256.LoadUnsafe(ref c, (nuint)j), Vector256.LoadUnsafe(ref s, (nuint)j));
                ra.StoreUnsafe(ref a, (nuint)j);
                rb.StoreUnsafe(ref b, (nuint)j);
            }
        }
        for (; j < n; j++)
        {
            var (ra, rb) = TOp.Invoke(Unsafe.Add(ref a, j), Unsafe.Add(ref b, j), Unsafe.Add(ref c, j), Unsafe.Add(ref s, j));
            Unsafe.Add(ref a, j) = ra;
            Unsafe.Add(ref b, j) = rb;
        }
    }

    /// <summary>
    /// TOp's reduction of x[0..n): one accumulator over the full vectors of the requested width (only that width),
    /// its horizontal total, then the scalar tail in order; the scalar path is the tail alone, from the identity.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Reduce<TOp>(ref float x, nint n, Isa isa) where TOp : IReduceOperator
    {
        nint i = 0;
        float total;
        if (isa == Isa.Vector512)
        {
            var acc = Vector512.Create(TOp.Identity);
            for (; i <= n - 16; i += 16) acc = TOp.Accumulate(acc, Vector512.LoadUnsafe(ref x, (nuint)i));
            total = TOp.Total(acc);
        }
        else if (isa == Isa.Vector256)
        {
            var acc = Vector256.Create(TOp.Identity);
            for (; i <= n - 8; i += 8) acc = TOp.Accumulate(acc, Vector256.LoadUnsafe(ref x, (nuint)i));
            total = TOp.Total(acc);
        }
        else total = TOp.Identity;
        for (; i < n; i++) total = TOp.Accumulate(total, Unsafe.Add(ref x, i));
        return total;
    }
}
