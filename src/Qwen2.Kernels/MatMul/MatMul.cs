using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>
/// Matrix products y = x · Wᵀ with F32, BF16 or F16 weights (read in place, widened in registers) and float32
/// activations: x is [tokens, Cols], y is [tokens, Rows]. One token is a matrix-vector product; several are a
/// matrix-matrix product that walks each block of four weight rows once for all tokens while it sits in cache.
/// Work is split across threads by blocks of output rows.
/// </summary>
public static unsafe class MatMul
{
    private const int RowBlock = 4;

    /// <summary>
    /// Whether a product of <paramref name="tokens"/> tokens over <paramref name="type"/> weights reads the weights in
    /// place as four streams per thread, widening each vector in registers for up to four tokens at a time; otherwise
    /// each block of four rows is widened once into a float32 scratch and register tiles run over that. BF16 (a shift)
    /// and F32 (nothing) widen so cheaply that streaming wins at every token count; F16's exact integer widening costs
    /// about ten instructions a vector, so past four tokens, where streaming would widen each row once per four tokens,
    /// the scratch wins (docs/ARCHITECTURE.md). Both sum every element in the same order.
    /// </summary>
    internal static bool Streams(WeightType type, int tokens) => type is WeightType.F32 or WeightType.BF16 || (type == WeightType.F16 && tokens <= 4);

    /// <summary>Computes y[t, r] = Σ_c W[r, c] · x[t, c] for t &lt; <paramref name="tokens"/>.</summary>
    /// <param name="w">The weights.</param>
    /// <param name="x">Activations, at least tokens × Cols.</param>
    /// <param name="y">Output, at least tokens × Rows.</param>
    /// <param name="tokens">Number of activation rows.</param>
    /// <param name="pool">Threads to split the rows over; <c>null</c> runs on the calling thread.</param>
    /// <param name="isa">Kernel path; <c>null</c> picks <see cref="IsaSupport.Best"/>.</param>
    public static void Multiply(in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens, WorkerPool? pool = null, Isa? isa = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(tokens);
        if (x.Length < (long)tokens * w.Cols) throw new ArgumentException($"x holds {x.Length} floats, {tokens} x {w.Cols} needed", nameof(x));
        if (y.Length < (long)tokens * w.Rows) throw new ArgumentException($"y holds {y.Length} floats, {tokens} x {w.Rows} needed", nameof(y));
        if (tokens == 0 || w.Rows == 0) return;
        if (WeightTypes.IsQuantized(w.Type))
        {
            fixed (float* qx = x, qy = y)
                QuantizedProduct.Multiply(w, qx, qy, tokens, pool, KernelPath.Record(IsaSupport.Check(isa ?? IsaSupport.Best)));
            return;
        }
        fixed (float* px = x, py = y)
        {
            var job = new Job { W = w, X = px, Y = py, Tokens = tokens, Isa = KernelPath.Record(IsaSupport.Check(isa ?? IsaSupport.Best)) };
            int blocks = (w.Rows + RowBlock - 1) / RowBlock;
            delegate*<void*, int, int, int, void> run = w.Type switch
            {
                WeightType.F32 => &Run<F32Row>,
                WeightType.BF16 => &Run<Bf16Row>,
                WeightType.F16 => &Run<F16Row>,
                _ => throw new ArgumentOutOfRangeException(nameof(w), w.Type, "unknown weight type"),
            };
            // Small products cost less than waking the workers.
            if (pool is null || (long)w.Rows * w.Cols * tokens < 32_768) run(&job, 0, blocks, 0);
            else pool.Run(run, &job, blocks);
        }
    }

    /// <summary>The dot product of one stored row with <paramref name="x"/> on a chosen path (the kernel's unit, exposed for tests and benchmarks).</summary>
    public static float Dot(ReadOnlySpan<byte> row, WeightType type, ReadOnlySpan<float> x, Isa? isa = null)
    {
        if (row.Length < WeightTypes.ByteCount(type, x.Length)) throw new ArgumentException($"row holds {row.Length} bytes, {x.Length} {type} elements needed", nameof(row));
        ref byte w = ref MemoryMarshal.GetReference(row);
        ref float xr = ref MemoryMarshal.GetReference(x);
        var i = KernelPath.Record(IsaSupport.Check(isa ?? IsaSupport.Best));
        if (WeightTypes.IsQuantized(type)) return QuantizedProduct.Dot(row, type, x, i);
        return type switch
        {
            WeightType.F32 => DotKernels.Dot1<F32Row>(ref w, ref xr, x.Length, i),
            WeightType.BF16 => DotKernels.Dot1<Bf16Row>(ref w, ref xr, x.Length, i),
            WeightType.F16 => DotKernels.Dot1<F16Row>(ref w, ref xr, x.Length, i),
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown weight type"),
        };
    }

    /// <summary>
    /// One token through two or three matrices that read the same <paramref name="x"/> (q, k and v; gate and up), as one
    /// job for the pool: their rows are split across the threads as if stacked, so the workers are started and awaited
    /// once instead of per matrix, and small matrices (k, v) do not pay for a pool round trip each. Every output row is
    /// computed exactly as <see cref="Multiply"/> computes it. Pass <c>default</c> for an unused third matrix.
    /// </summary>
    public static void MultiplyFused(in WeightMatrix w0, Span<float> y0, in WeightMatrix w1, Span<float> y1, in WeightMatrix w2, Span<float> y2,
        ReadOnlySpan<float> x, WorkerPool? pool = null, Isa? isa = null) => MultiplyFused(w0, y0, w1, y1, w2, y2, x, 1, pool, isa);

    /// <summary>
    /// <see cref="MultiplyFused(in WeightMatrix, Span{float}, in WeightMatrix, Span{float}, in WeightMatrix, Span{float}, ReadOnlySpan{float}, WorkerPool?, Isa?)"/>
    /// for several tokens: x is [tokens, Cols] and each output [tokens, Rows]. Float weights share one type and take as
    /// many tokens as <see cref="Streams"/> allows; block-quantized weights may mix their types (llama.cpp's mixes give
    /// q and k one type and v another) and take any token count, x being quantized once per activation format.
    /// </summary>
    public static void MultiplyFused(in WeightMatrix w0, Span<float> y0, in WeightMatrix w1, Span<float> y1, in WeightMatrix w2, Span<float> y2,
        ReadOnlySpan<float> x, int tokens, WorkerPool? pool = null, Isa? isa = null)
    {
        bool quantized = AllQuantized(w0, w1, w2);
        if (w1.Cols != w0.Cols || (w2.Rows > 0 && w2.Cols != w0.Cols))
            throw new ArgumentException("fused matrices must share their column count");
        if (!quantized && (w1.Type != w0.Type || (w2.Rows > 0 && w2.Type != w0.Type)))
            throw new ArgumentException("fused float matrices must share their weight type (only block-quantized types may mix)");
        if (tokens < 1 || (!quantized && !Streams(w0.Type, tokens)))
            throw new ArgumentOutOfRangeException(nameof(tokens), tokens, tokens < 1 ? "fused products take at least one token" : $"fused products of {w0.Type} weights take 1 to 4 tokens");
        if (x.Length < (long)tokens * w0.Cols) throw new ArgumentException($"x holds {x.Length} floats, {tokens} x {w0.Cols} needed", nameof(x));
        if (y0.Length < (long)tokens * w0.Rows || y1.Length < (long)tokens * w1.Rows || y2.Length < (long)tokens * w2.Rows)
            throw new ArgumentException("an output span is shorter than its matrix's rows times the tokens");
        var path = KernelPath.Record(IsaSupport.Check(isa ?? IsaSupport.Best));
        fixed (float* px = x, p0 = y0, p1 = y1, p2 = y2)
        {
            if (quantized)
            {
                QuantizedProduct.MultiplyShared(w0, p0, w1, p1, w2, p2, px, tokens, pool, path);
                return;
            }
            var job = new FusedJob
            {
                A = new Job { W = w0, X = px, Y = p0, Tokens = tokens, Isa = path },
                B = new Job { W = w1, X = px, Y = p1, Tokens = tokens, Isa = path },
                C = new Job { W = w2, X = px, Y = p2, Tokens = tokens, Isa = path },
            };
            int total = w0.Rows + w1.Rows + w2.Rows, blocks = (total + RowBlock - 1) / RowBlock;
            delegate*<void*, int, int, int, void> run = w0.Type switch
            {
                WeightType.F32 => &RunFused<F32Row>,
                WeightType.BF16 => &RunFused<Bf16Row>,
                WeightType.F16 => &RunFused<F16Row>,
                _ => throw new ArgumentOutOfRangeException(nameof(w0), w0.Type, "unknown weight type"),
            };
            if (pool is null) run(&job, 0, blocks, 0);
            else pool.Run(run, &job, blocks);
        }
    }

    /// <summary>
    /// Two or three products that read the same <paramref name="x"/> (q, k and v; gate and up): y0 = x · w0ᵀ, y1 = x ·
    /// w1ᵀ, y2 = x · w2ᵀ, each exactly as <see cref="Multiply"/> computes it. Whether they run as one pool job over the
    /// stacked rows or one product after the other is this layer's choice, made from the weight types and token count
    /// (block-quantized matrices, of any mix of types, always run as one job).
    /// Pass <c>default</c> for an unused third matrix.
    /// </summary>
    public static void MultiplyShared(in WeightMatrix w0, Span<float> y0, in WeightMatrix w1, Span<float> y1, in WeightMatrix w2, Span<float> y2,
        ReadOnlySpan<float> x, int tokens, WorkerPool? pool = null, Isa? isa = null)
    {
        if (AllQuantized(w0, w1, w2) || (Streams(w0.Type, tokens) && w1.Type == w0.Type && (w2.Rows == 0 || w2.Type == w0.Type)))
        {
            MultiplyFused(w0, y0, w1, y1, w2, y2, x, tokens, pool, isa);
            return;
        }
        Multiply(w0, x, y0, tokens, pool, isa);
        Multiply(w1, x, y1, tokens, pool, isa);
        if (w2.Rows > 0) Multiply(w2, x, y2, tokens, pool, isa);
    }

    /// <summary>Whether every matrix with rows (the first two always count) is block-quantized.</summary>
    private static bool AllQuantized(in WeightMatrix w0, in WeightMatrix w1, in WeightMatrix w2) =>
        WeightTypes.IsQuantized(w0.Type) && WeightTypes.IsQuantized(w1.Type) && (w2.Rows == 0 || WeightTypes.IsQuantized(w2.Type));

    private struct FusedJob
    {
        public Job A, B, C;
    }

    private static void RunFused<TF>(void* state, int startBlock, int endBlock, int worker) where TF : IRowFormat
    {
        ref FusedJob f = ref Unsafe.AsRef<FusedJob>(state);
        int start = startBlock * RowBlock, end = endBlock * RowBlock, a = f.A.W.Rows, b = f.B.W.Rows;
        Segment<TF>(ref f.A, 0, start, end);
        Segment<TF>(ref f.B, a, start, end);
        Segment<TF>(ref f.C, a + b, start, end);

        // The part of rows [start, end) of the stack that falls in the matrix whose first row is at offset.
        static void Segment<T>(ref Job job, int offset, int start, int end) where T : IRowFormat
        {
            int from = Math.Max(start, offset) - offset, to = Math.Min(end, offset + job.W.Rows) - offset;
            if (from < to) RunStreams<T>(ref job, from, to);
        }
    }

    /// <summary>The scalar twin of <see cref="Multiply"/>: y[t, r] summed left to right in float32, one element at a time (block-quantized types: their scalar dot).</summary>
    public static void MultiplyScalar(in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int tokens)
    {
        for (int t = 0; t < tokens; t++)
            for (int r = 0; r < w.Rows; r++)
                y[t * w.Rows + r] = Dot(w.RowBytesSpan(r), w.Type, x.Slice(t * w.Cols, w.Cols), Isa.Scalar);
    }

    /// <summary>
    /// One token: rows [r0, r1) are read as four streams a quarter of the range apart, so the memory system sees four
    /// sequential streams per thread instead of one (one stream leaves bandwidth unused at every 4 KiB page boundary).
    /// Each row's dot product is the same computation as in <see cref="DotKernels.Dot1{TF}"/>, so the bits do not change.
    /// </summary>
    private static void RunStreams<TF>(ref Job job, int r0, int r1) where TF : IRowFormat
    {
        if (job.Tokens > 1)
        {
            RunStreamsBatched<TF>(ref job, r0, r1);
            return;
        }
        int cols = job.W.Cols, quarter = (r1 - r0) / 4;
        nint stride = (nint)job.W.RowBytes;
        ref float x = ref Unsafe.AsRef<float>(job.X);
        float* y = job.Y;
        float* dst = stackalloc float[4];
        for (int i = 0; i < quarter; i++)
        {
            int r = r0 + i;
            DotKernels.Dot4<TF>(ref Unsafe.AsRef<byte>(job.W.Data + r * stride), stride * quarter, ref x, cols, ref Unsafe.AsRef<float>(dst), job.Isa);
            y[r] = dst[0]; y[r + quarter] = dst[1]; y[r + 2 * quarter] = dst[2]; y[r + 3 * quarter] = dst[3];
        }
        for (int r = r0 + 4 * quarter; r < r1; r++)
            y[r] = DotKernels.Dot1<TF>(ref Unsafe.AsRef<byte>(job.W.Data + r * stride), ref x, cols, job.Isa);
    }

    /// <summary>A small batch: the four-stream walk of <see cref="RunStreams"/>, each row quad multiplied with up to four tokens at once.</summary>
    private static void RunStreamsBatched<TF>(ref Job job, int r0, int r1) where TF : IRowFormat
    {
        int cols = job.W.Cols, rows = job.W.Rows, quarter = (r1 - r0) / 4, tokens = job.Tokens;
        nint stride = (nint)job.W.RowBytes, quad = stride * quarter;
        float* dst = stackalloc float[4];
        for (int i = 0; i < quarter; i++)
        {
            int r = r0 + i;
            TokenTiles<TF>(ref Unsafe.AsRef<byte>(job.W.Data + r * stride), quad, job.X, cols, tokens, job.Y + r, rows, quarter, job.Isa, dst);
        }
        for (int r = r0 + 4 * quarter; r < r1; r++)
            for (int t = 0; t < tokens; t++)
                job.Y[(nint)t * rows + r] = DotKernels.Dot1<TF>(ref Unsafe.AsRef<byte>(job.W.Data + r * stride), ref Unsafe.AsRef<float>(job.X + (nint)t * cols), cols, job.Isa);
    }

    /// <summary>
    /// Four rows <paramref name="rowStride"/> bytes apart times every token, four tokens at a time, then the remainder:
    /// output (row k, token t) goes to y[t × <paramref name="yToken"/> + k × <paramref name="yRow"/>].
    /// </summary>
    private static void TokenTiles<TF>(ref byte w, nint rowStride, float* x, int cols, int tokens, float* y, nint yToken, nint yRow, Isa isa, float* dst)
        where TF : IRowFormat
    {
        for (int t = 0; t < tokens; t += 4)
        {
            float* xt = x + (nint)t * cols, yt = y + (nint)t * yToken;
            switch (tokens - t)
            {
                case 1:
                    DotKernels.Dot4<TF>(ref w, rowStride, ref Unsafe.AsRef<float>(xt), cols, ref Unsafe.AsRef<float>(dst), isa);
                    for (int k = 0; k < 4; k++) yt[k * yRow] = dst[k];
                    break;
                case 2: DotKernels.Dot4xT<TF, Tokens2>(ref w, rowStride, xt, cols, cols, yt, yToken, yRow, isa); break;
                case 3: DotKernels.Dot4xT<TF, Tokens3>(ref w, rowStride, xt, cols, cols, yt, yToken, yRow, isa); break;
                default: DotKernels.Dot4xT<TF, Tokens4>(ref w, rowStride, xt, cols, cols, yt, yToken, yRow, isa); break;
            }
        }
    }

    private struct Job
    {
        public WeightMatrix W;
        public float* X, Y;
        public int Tokens;
        public Isa Isa;
    }

    private static void Run<TF>(void* state, int startBlock, int endBlock, int worker) where TF : IRowFormat
    {
        ref Job job = ref Unsafe.AsRef<Job>(state);
        int rows = job.W.Rows, cols = job.W.Cols;
        nint stride = (nint)job.W.RowBytes;
        if (Streams(job.W.Type, job.Tokens))
        {
            RunStreams<TF>(ref job, startBlock * RowBlock, Math.Min(endBlock * RowBlock, rows));
            return;
        }
        // F16 for several tokens (see Streams): each block of four rows is widened once into a float32 scratch that
        // stays in L1, then multiplied with every token in the same register tiles. Widening is exact, so the sums are
        // the same bits as the one-token path's.
        float* dst = stackalloc float[4];
        fixed (float* scratch = WidenScratch(RowBlock * cols))
        {
            for (int b = startBlock; b < endBlock; b++)
            {
                int r0 = b * RowBlock;
                ref byte w = ref Unsafe.AsRef<byte>(job.W.Data + r0 * stride);
                if (r0 + RowBlock > rows)
                {
                    for (int t = 0; t < job.Tokens; t++)
                    {
                        ref float xt = ref Unsafe.AsRef<float>(job.X + (nint)t * cols);
                        float* yt = job.Y + (nint)t * rows + r0;
                        for (int r = 0; r < rows - r0; r++) yt[r] = DotKernels.Dot1<TF>(ref Unsafe.Add(ref w, stride * r), ref xt, cols, job.Isa);
                    }
                    continue;
                }
                for (int r = 0; r < RowBlock; r++) Widen<TF>(ref Unsafe.Add(ref w, stride * r), new Span<float>(scratch + r * cols, cols), job.Isa);
                TokenTiles<F32Row>(ref Unsafe.AsRef<byte>(scratch), cols * sizeof(float), job.X, cols, job.Tokens, job.Y + r0, rows, 1, job.Isa, dst);
            }
        }
    }

    [ThreadStatic] private static float[]? t_widened;

    private static float[] WidenScratch(int length)
    {
        var s = t_widened;
        if (s is null || s.Length < length) t_widened = s = new float[length];
        return s;
    }

    /// <summary>Widens one stored row to float32 on the job's path (exact for BF16 and F16, so every path gives the same floats).</summary>
    internal static void Widen<TF>(ref byte row, Span<float> dst, Isa isa) where TF : IRowFormat
    {
        int i = 0;
        ref float d = ref MemoryMarshal.GetReference(dst);
        if (isa == Isa.Vector512)
            for (; i + 16 <= dst.Length; i += 16) TF.Load512(ref row, i).StoreUnsafe(ref d, (nuint)i);
        else if (isa == Isa.Vector256)
            for (; i + 8 <= dst.Length; i += 8) TF.Load256(ref row, i).StoreUnsafe(ref d, (nuint)i);
        for (; i < dst.Length; i++) dst[i] = TF.Load1(ref row, i);
    }
}
