using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

/// <summary>
/// Products over block-quantized weights: the float32 activations are quantized once per call, each token into every
/// <see cref="ActivationFormat"/> the matrices read, then every weight row is dotted with them in integers, in place.
/// Two or three matrices that read the same activations (q, k, v; gate, up) run as one pool job over their stacked
/// rows, whatever their quantized types. Each output is the format's <see cref="IQuantFormat.Dot"/> of its row and
/// token, so results do not depend on threads, tiling or token count.
/// </summary>
internal static unsafe class QuantizedProduct
{
    private const int RowBlock = 4;
    // Tokens whose activations a thread's rows pass over before the next group: as many as fit GroupBytes of a 1 MB L2,
    // between 64 (Qwen2-1.5B's widest rows, 8960 columns, are 11 KB a token as Q8K) and 256, so weights are read, and
    // the prefill tiles' rows prepared, once per group instead of once per token.
    private const int GroupBytes = 512 * 1024, MinTokenGroup = 64, MaxTokenGroup = 256;
    // Products smaller than this cost less than waking the workers.
    private const long InlineWork = 32_768;

    [ThreadStatic] private static byte[]? t_activations;
    [ThreadStatic] private static byte[]? t_prepared;

    /// <summary>The calling thread's activation scratch of at least <paramref name="bytes"/> bytes (grown, never shrunk, so steady decoding allocates nothing).</summary>
    internal static byte[] Scratch(int bytes)
    {
        var s = t_activations;
        if (s is null || s.Length < bytes) t_activations = s = new byte[Math.Max(bytes, 4096)];
        return s;
    }

    /// <summary>y = x · wᵀ for <paramref name="tokens"/> tokens.</summary>
    public static void Multiply(in WeightMatrix w, float* x, float* y, int tokens, WorkerPool? pool, Isa isa) =>
        MultiplyShared(w, y, default, null, default, null, x, tokens, pool, isa);

    /// <summary>
    /// y0 = x · w0ᵀ, y1 = x · w1ᵀ, y2 = x · w2ᵀ (matrices with no rows are skipped) as one job: x quantized once per
    /// activation format, the stacked rows split across the pool. Every matrix is block-quantized with the same columns.
    /// </summary>
    public static void MultiplyShared(in WeightMatrix w0, float* y0, in WeightMatrix w1, float* y1, in WeightMatrix w2, float* y2,
        float* x, int tokens, WorkerPool? pool, Isa isa)
    {
        int cols = w0.Cols;
        int q8 = Needs(ActivationFormat.Q8, w0, w1, w2) ? QuantizedActivations.ByteCount(ActivationFormat.Q8, cols) : 0;
        int q8k = Needs(ActivationFormat.Q8K, w0, w1, w2) ? QuantizedActivations.ByteCount(ActivationFormat.Q8K, cols) : 0;
        var scratch = Scratch(checked((q8 + q8k) * tokens));
        fixed (byte* a = scratch)
        {
            byte* aq8 = a, aq8k = a + (nint)q8 * tokens;
            for (int t = 0; t < tokens; t++)
            {
                var xt = new ReadOnlySpan<float>(x + (nint)t * cols, cols);
                if (q8 > 0) QuantizedActivations.Quantize(ActivationFormat.Q8, xt, new Span<byte>(aq8 + (nint)t * q8, q8), isa);
                if (q8k > 0) QuantizedActivations.Quantize(ActivationFormat.Q8K, xt, new Span<byte>(aq8k + (nint)t * q8k, q8k), isa);
            }
            var job = new Job
            {
                P0 = Part.Of(w0, y0, aq8, q8, aq8k, q8k),
                P1 = Part.Of(w1, y1, aq8, q8, aq8k, q8k),
                P2 = Part.Of(w2, y2, aq8, q8, aq8k, q8k),
                Tokens = tokens,
                Isa = isa,
            };
            long rows = (long)job.P0.Rows + job.P1.Rows + job.P2.Rows;
            int blocks = checked((int)((rows + RowBlock - 1) / RowBlock));
            if (pool is null || rows * cols * tokens < InlineWork) Run(&job, 0, blocks, 0);
            else pool.RunChunked(&Run, &job, blocks);
        }
    }

    private static bool Needs(ActivationFormat format, in WeightMatrix w0, in WeightMatrix w1, in WeightMatrix w2) =>
        (w0.Rows > 0 && Format(w0.Type).Activation == format) || (w1.Rows > 0 && Format(w1.Type).Activation == format)
        || (w2.Rows > 0 && Format(w2.Type).Activation == format);

    /// <summary>A block-quantized type's activation format and its typed entry points: the one place such a type meets its format.</summary>
    internal static Kind Format(WeightType type) => type switch
    {
        WeightType.Q8_0 => Of32<Q8_0Format>(),
        WeightType.Q4_0 => Of32<Q4_0Format>(),
        WeightType.Q4_1 => Of32<Q4_1Format>(),
        WeightType.Q5_0 => Of32<Q5_0Format>(),
        WeightType.Q5_1 => Of32<Q5_1Format>(),
        WeightType.Q4_K => OfK<Q4KFormat, ScaleMinKernels.Tile<Q4KFormat>>(),
        WeightType.Q5_K => OfK<Q5KFormat, ScaleMinKernels.Tile<Q5KFormat>>(),
        WeightType.Q6_K => OfK<Q6KFormat, Q6KFormat.Tile>(),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, Enum.IsDefined(type) ? "not a block-quantized weight type" : "unknown weight type"),
    };

    private static Kind Of<TQ>() where TQ : IQuantFormat => new()
    {
        Layout = (TQ.BlockSize, TQ.BlockBytes),
        Activation = TQ.Activation,
        Rows = &Rows<TQ>,
        Dot = &DotOf<TQ>,
        DotTokens = &DotTokensOf<TQ>,
        Dot4Rows = &Dot4RowsOf<TQ>,
        DequantizeBlock = &DequantizeOf<TQ>,
    };

    /// <summary><see cref="Of{TQ}"/> for a 32-element format, whose decoding walks four rows at once (<see cref="Block32.Dot4Rows{T}"/>).</summary>
    private static Kind Of32<TQ>() where TQ : IBlock32
    {
        var kind = Of<TQ>();
        kind.Rows = &Rows32<TQ>;
        return kind;
    }

    /// <summary><see cref="Of{TQ}"/> for a K-quant, whose prefill runs in the tiles of <see cref="KTile"/> on kernel <typeparamref name="TK"/>.</summary>
    private static Kind OfK<TQ, TK>() where TQ : IQuantFormat where TK : IKTileKernel
    {
        var kind = Of<TQ>();
        kind.Rows = &RowsK<TQ, TK>;
        return kind;
    }

    private static float DotOf<TQ>(ref byte w, ref byte a, int blocks, Isa isa) where TQ : IQuantFormat => TQ.Dot(ref w, ref a, blocks, isa);

    private static void DotTokensOf<TQ>(ref byte w, ref byte a, nint aStride, int tokens, int blocks, Span<float> destination, Isa isa) where TQ : IQuantFormat =>
        TQ.DotTokens(ref w, ref a, aStride, tokens, blocks, destination, isa);

    private static void Dot4RowsOf<TQ>(ref byte w, nint stride, ref byte a, int blocks, ref float dst, Isa isa) where TQ : IQuantFormat =>
        TQ.Dot4Rows(ref w, stride, ref a, blocks, ref dst, isa);

    private static void DequantizeOf<TQ>(ref byte block, Span<float> destination) where TQ : IQuantFormat => TQ.DequantizeBlock(ref block, destination);

    /// <summary>The entry points of one block-quantized format (<see cref="IQuantFormat"/>), for code that holds a <see cref="WeightType"/>.</summary>
    internal struct Kind
    {
        public (int Size, int Bytes) Layout;
        public ActivationFormat Activation;
        public delegate*<ref Part, int, int, int, Isa, void> Rows;
        public delegate*<ref byte, ref byte, int, Isa, float> Dot;
        public delegate*<ref byte, ref byte, nint, int, int, Span<float>, Isa, void> DotTokens;
        public delegate*<ref byte, nint, ref byte, int, ref float, Isa, void> Dot4Rows;
        public delegate*<ref byte, Span<float>, void> DequantizeBlock;
    }

    /// <summary>One row's dot product with float32 activations, quantized here (allocates: for tests and single dots).</summary>
    public static float Dot(ReadOnlySpan<byte> row, WeightType type, ReadOnlySpan<float> x, Isa isa)
    {
        var kind = Format(type);
        var a = new byte[QuantizedActivations.ByteCount(kind.Activation, x.Length)];
        QuantizedActivations.Quantize(kind.Activation, x, a, isa);
        return kind.Dot(ref Unsafe.AsRef(in row[0]), ref a[0], x.Length / kind.Layout.Size, isa);
    }

    /// <summary>Dequantizes whole blocks of <paramref name="type"/> with ggml's arithmetic.</summary>
    public static void Dequantize(WeightType type, ReadOnlySpan<byte> source, Span<float> destination)
    {
        var kind = Format(type);
        var (size, bytes) = kind.Layout;
        for (int b = 0; b < destination.Length / size; b++)
            kind.DequantizeBlock(ref Unsafe.AsRef(in source[b * bytes]), destination.Slice(b * size, size));
    }

    /// <summary>One matrix of the job: its rows, its output and the activations of its format.</summary>
    internal struct Part
    {
        public byte* W, A;
        public nint RowBytes, ActivationBytes;
        public float* Y;
        public int Rows, Blocks;
        public delegate*<ref Part, int, int, int, Isa, void> Run;

        public static Part Of(in WeightMatrix w, float* y, byte* q8, int q8Bytes, byte* q8k, int q8kBytes)
        {
            if (w.Rows == 0) return default;
            var kind = Format(w.Type);
            bool k = kind.Activation == ActivationFormat.Q8K;
            return new Part
            {
                W = w.Data, A = k ? q8k : q8, RowBytes = (nint)w.RowBytes, ActivationBytes = k ? q8kBytes : q8Bytes, Y = y,
                Rows = w.Rows, Blocks = w.Cols / WeightTypes.BlockSize(w.Type), Run = kind.Rows,
            };
        }
    }

    private struct Job
    {
        public Part P0, P1, P2;
        public int Tokens;
        public Isa Isa;
    }

    private static void Run(void* state, int startBlock, int endBlock, int worker)
    {
        ref Job job = ref Unsafe.AsRef<Job>(state);
        int start = startBlock * RowBlock, end = endBlock * RowBlock, a = job.P0.Rows, b = job.P1.Rows;
        Segment(ref job.P0, 0, start, end, job.Tokens, job.Isa);
        Segment(ref job.P1, a, start, end, job.Tokens, job.Isa);
        Segment(ref job.P2, a + b, start, end, job.Tokens, job.Isa);

        // The part of rows [start, end) of the stack that falls in the matrix whose first row is at offset.
        static void Segment(ref Part p, int offset, int start, int end, int tokens, Isa isa)
        {
            int from = Math.Max(start, offset) - offset, to = Math.Min(end, offset + p.Rows) - offset;
            if (from < to) p.Run(ref p, from, to, tokens, isa);
        }
    }

    /// <summary><see cref="Rows{TQ}"/>, with several tokens in register tiles on the vector paths.</summary>
    private static void Rows32<TQ>(ref Part p, int r0, int r1, int tokens, Isa isa) where TQ : IBlock32
    {
        if (tokens >= Block32.WideTokens && isa == Isa.Vector512 && !TQ.HasMin && WideTiles.Preferred)
            PreparedTiles<TQ, Block32WideTile<TQ>>(ref p, r0, r1, tokens, isa);
        else if (tokens > 1 && isa != Isa.Scalar && Avx2.IsSupported) PreparedTiles<TQ, Block32Tile<TQ>>(ref p, r0, r1, tokens, isa);
        else Rows<TQ>(ref p, r0, r1, tokens, isa);
    }

    /// <summary>
    /// <see cref="Rows{TQ}"/>, with a tile's width of tokens or more in register tiles on the 256-bit path, AVX-512 CPUs
    /// included (the 512-bit kernel's four tokens per row ran at half the tiles' speed: bench/results).
    /// </summary>
    private static void RowsK<TQ, TK>(ref Part p, int r0, int r1, int tokens, Isa isa) where TQ : IQuantFormat where TK : IKTileKernel
    {
        if (tokens >= KTile.Tokens && isa == Isa.Vector512 && WideTiles.Preferred) PreparedTiles<TQ, KQuantTile<TK, Bits512>>(ref p, r0, r1, tokens, isa);
        else if (tokens >= KTile.Tokens && isa != Isa.Scalar && Avx2.IsSupported) PreparedTiles<TQ, KQuantTile<TK, Bits256>>(ref p, r0, r1, tokens, isa);
        else Rows<TQ>(ref p, r0, r1, tokens, isa);
    }

    /// <summary>
    /// Several tokens: in each group of tokens, register tiles of rows by tokens (<typeparamref name="TT"/>), each tile's
    /// rows unpacked once for the whole group into the thread's scratch, which stays in L1 while the group's tiles
    /// pass; the tokens and rows left over as <see cref="RowTokens{TQ}"/>.
    /// </summary>
    private static void PreparedTiles<TQ, TT>(ref Part p, int r0, int r1, int tokens, Isa isa) where TQ : IQuantFormat where TT : ITile
    {
        int rows = TT.Rows, columns = TT.Tokens;
        nint bytes = TT.PreparedBytes(p.Blocks);
        bool vnni = AvxVnni.IsSupported;
        var scratch = t_prepared;
        if (scratch is null || scratch.Length < bytes) t_prepared = scratch = new byte[checked((int)bytes)];
        int group = TokenGroup(p.ActivationBytes);
        fixed (byte* prepared = scratch)
        {
            for (int t0 = 0; t0 < tokens; t0 += group)
            {
                int t1 = Math.Min(tokens, t0 + group), whole = t0 + (t1 - t0) / columns * columns, r = r0;
                for (; whole > t0 && r + rows <= r1; r += rows)
                {
                    ref byte w = ref Unsafe.AsRef<byte>(p.W + r * p.RowBytes);
                    TT.Prepare(ref w, p.RowBytes, p.Blocks, prepared, vnni);
                    for (int t = t0; t < whole; t += columns)
                        TT.Dot(prepared, ref Unsafe.AsRef<byte>(p.A + t * p.ActivationBytes), p.ActivationBytes, p.Blocks,
                            p.Y + (nint)t * p.Rows + r, p.Rows, vnni);
                    for (int k = 0; k < rows; k++) RowTokens<TQ>(ref p, r + k, whole, t1, isa);
                }
                for (; r < r1; r++) RowTokens<TQ>(ref p, r, t0, t1, isa);
            }
        }
    }

    /// <summary>Tokens in a group whose activations are <paramref name="activationBytes"/> a token: a multiple of every tile's tokens.</summary>
    private static int TokenGroup(nint activationBytes) => (int)Math.Clamp(GroupBytes / activationBytes / 8 * 8, MinTokenGroup, MaxTokenGroup);

    /// <summary>A register tile of rows by tokens over rows prepared once per group of tokens, for <see cref="PreparedTiles{TQ, TT}"/>.</summary>
    private interface ITile
    {
        static abstract int Rows { get; }
        static abstract int Tokens { get; }

        /// <summary>Bytes <see cref="Prepare"/> writes for a tile's rows of <paramref name="blocks"/> blocks.</summary>
        static abstract nint PreparedBytes(int blocks);

        /// <summary>Unpacks the tile's <see cref="Rows"/> rows at <paramref name="w"/> to <paramref name="prepared"/>, laid out for the products <paramref name="vnni"/> picks.</summary>
        static abstract void Prepare(ref byte w, nint rowBytes, int blocks, byte* prepared, bool vnni);

        /// <summary>y[t · yStride + r] = the dot of prepared row r with token t, for r &lt; <see cref="Rows"/>, t &lt; <see cref="Tokens"/>.</summary>
        static abstract void Dot(byte* prepared, ref byte a, nint aStride, int blocks, float* y, nint yStride, bool vnni);
    }

    private readonly struct Block32Tile<TQ> : ITile where TQ : IBlock32
    {
        public static int Rows => TQ.TileRows;
        public static int Tokens => Block32.TileTokens<TQ>();
        public static nint PreparedBytes(int blocks) => Block32.PreparedBytes(TQ.TileRows, blocks);
        public static void Prepare(ref byte w, nint rowBytes, int blocks, byte* prepared, bool vnni) => Block32.Prepare<TQ>(ref w, rowBytes, TQ.TileRows, blocks, prepared, vnni);

        public static void Dot(byte* prepared, ref byte a, nint aStride, int blocks, float* y, nint yStride, bool vnni) =>
            Block32.PreparedTile<TQ>(prepared, ref a, aStride, blocks, y, yStride, vnni);
    }

    /// <summary>The signed formats' 512-bit tile, where <see cref="WideTiles.Preferred"/> (see <see cref="Block32.WideTile{T}"/>).</summary>
    private readonly struct Block32WideTile<TQ> : ITile where TQ : IBlock32
    {
        public static int Rows => Block32.WideRows;
        public static int Tokens => Block32.WideTokens;
        public static nint PreparedBytes(int blocks) => Block32.PreparedBytes(Block32.WideRows, blocks);
        public static void Prepare(ref byte w, nint rowBytes, int blocks, byte* prepared, bool vnni) => Block32.PrepareWide<TQ>(ref w, rowBytes, blocks, prepared);

        public static void Dot(byte* prepared, ref byte a, nint aStride, int blocks, float* y, nint yStride, bool vnni) =>
            Block32.WideTile<TQ>(prepared, ref a, aStride, blocks, y, yStride);
    }

    /// <summary>The K-quants' tile, at 512 bits where <typeparamref name="TW"/> says (see <see cref="KTile.RunPrepared512{TK}"/>).</summary>
    private readonly struct KQuantTile<TK, TW> : ITile where TK : IKTileKernel where TW : ITileWidth
    {
        public static int Rows => KTile.Rows;
        public static int Tokens => KTile.Tokens;
        public static nint PreparedBytes(int blocks) => KTile.PreparedBytes(blocks);
        public static void Prepare(ref byte w, nint rowBytes, int blocks, byte* prepared, bool vnni) => KTile.Prepare<TK>(ref w, rowBytes, blocks, prepared);

        public static void Dot(byte* prepared, ref byte a, nint aStride, int blocks, float* y, nint yStride, bool vnni)
        {
            if (TW.Wide) KTile.RunPrepared512<TK>(prepared, ref a, aStride, blocks, y, yStride);
            else KTile.RunPrepared<TK, NativeProducts>(prepared, ref a, aStride, blocks, y, yStride);
        }
    }

    private interface ITileWidth { static abstract bool Wide { get; } }
    private readonly struct Bits256 : ITileWidth { public static bool Wide => false; }
    private readonly struct Bits512 : ITileWidth { public static bool Wide => true; }

    /// <summary>
    /// One token: rows [r0, r1) read as four streams a quarter of the range apart, block by block
    /// (<see cref="IQuantFormat.Dot4Rows"/>), so each thread keeps four sequential streams in flight.
    /// </summary>
    private static void Decode<TQ>(ref Part p, int r0, int r1, Isa isa) where TQ : IQuantFormat
    {
        int quarter = (r1 - r0) / 4;
        nint q = p.RowBytes * quarter;
        ref byte a = ref Unsafe.AsRef<byte>(p.A);
        float* dst = stackalloc float[4];
        for (int i = 0; i < quarter; i++)
        {
            int r = r0 + i;
            TQ.Dot4Rows(ref Unsafe.AsRef<byte>(p.W + r * p.RowBytes), q, ref a, p.Blocks, ref Unsafe.AsRef<float>(dst), isa);
            p.Y[r] = dst[0]; p.Y[r + quarter] = dst[1]; p.Y[r + 2 * quarter] = dst[2]; p.Y[r + 3 * quarter] = dst[3];
        }
        for (int r = r0 + 4 * quarter; r < r1; r++) p.Y[r] = TQ.Dot(ref Unsafe.AsRef<byte>(p.W + r * p.RowBytes), ref a, p.Blocks, isa);
    }

    /// <summary>
    /// Rows [r0, r1) of one matrix. One token: <see cref="Decode{TQ}"/>. Several: groups of <see cref="TokenGroup"/>
    /// tokens, each row dotted with four of them at a time while it sits in L1.
    /// </summary>
    private static void Rows<TQ>(ref Part p, int r0, int r1, int tokens, Isa isa) where TQ : IQuantFormat
    {
        if (tokens == 1)
        {
            Decode<TQ>(ref p, r0, r1, isa);
            return;
        }
        int group = TokenGroup(p.ActivationBytes);
        for (int t0 = 0; t0 < tokens; t0 += group)
        {
            int t1 = Math.Min(tokens, t0 + group);
            for (int r = r0; r < r1; r++) RowTokens<TQ>(ref p, r, t0, t1, isa);
        }
    }

    /// <summary>Row <paramref name="r"/> against tokens [<paramref name="t0"/>, <paramref name="t1"/>), four at a time.</summary>
    private static void RowTokens<TQ>(ref Part p, int r, int t0, int t1, Isa isa) where TQ : IQuantFormat
    {
        Span<float> dst = stackalloc float[4];
        ref byte w = ref Unsafe.AsRef<byte>(p.W + r * p.RowBytes);
        for (int t = t0; t < t1; t += 4)
        {
            int n = Math.Min(4, t1 - t);
            TQ.DotTokens(ref w, ref Unsafe.AsRef<byte>(p.A + t * p.ActivationBytes), p.ActivationBytes, n, p.Blocks, dst, isa);
            for (int k = 0; k < n; k++) p.Y[(nint)(t + k) * p.Rows + r] = dst[k];
        }
    }
}
