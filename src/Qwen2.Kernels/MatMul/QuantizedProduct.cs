using System.Runtime.CompilerServices;

namespace Qwen2.Kernels;

/// <summary>
/// Products over block-quantized weights: the float32 activations are quantized once per call (each token to the
/// format's <see cref="ActivationFormat"/>), then every weight row is dotted with them in integers, in place. Each output
/// is the format's <see cref="IQuantFormat.Dot"/>, so results do not depend on threads, blocking or token count.
/// </summary>
internal static unsafe class QuantizedProduct
{
    private const int RowBlock = 4;

    [ThreadStatic] private static byte[]? t_activations;

    /// <summary>The calling thread's activation scratch of at least <paramref name="bytes"/> bytes (grown, never shrunk, so steady decoding allocates nothing).</summary>
    internal static byte[] Scratch(int bytes)
    {
        var s = t_activations;
        if (s is null || s.Length < bytes) t_activations = s = new byte[Math.Max(bytes, 4096)];
        return s;
    }

    public static void Multiply(in WeightMatrix w, float* x, float* y, int tokens, WorkerPool? pool, Isa isa)
    {
        switch (w.Type)
        {
            case WeightType.Q8_0: Multiply<Q8_0Format>(w, x, y, tokens, pool, isa); break;
            case WeightType.Q4_0: Multiply<Q4_0Format>(w, x, y, tokens, pool, isa); break;
            case WeightType.Q4_1: Multiply<Q4_1Format>(w, x, y, tokens, pool, isa); break;
            case WeightType.Q5_0: Multiply<Q5_0Format>(w, x, y, tokens, pool, isa); break;
            case WeightType.Q5_1: Multiply<Q5_1Format>(w, x, y, tokens, pool, isa); break;
            case WeightType.Q4_K: Multiply<Q4KFormat>(w, x, y, tokens, pool, isa); break;
            case WeightType.Q5_K: Multiply<Q5KFormat>(w, x, y, tokens, pool, isa); break;
            case WeightType.Q6_K: Multiply<Q6KFormat>(w, x, y, tokens, pool, isa); break;
            default: throw new ArgumentOutOfRangeException(nameof(w), w.Type, "not a block-quantized weight type");
        }
    }

    public static float Dot(ReadOnlySpan<byte> row, WeightType type, ReadOnlySpan<float> x, Isa isa) => type switch
    {
        WeightType.Q8_0 => Dot<Q8_0Format>(row, x, isa),
        WeightType.Q4_0 => Dot<Q4_0Format>(row, x, isa),
        WeightType.Q4_1 => Dot<Q4_1Format>(row, x, isa),
        WeightType.Q5_0 => Dot<Q5_0Format>(row, x, isa),
        WeightType.Q5_1 => Dot<Q5_1Format>(row, x, isa),
        WeightType.Q4_K => Dot<Q4KFormat>(row, x, isa),
        WeightType.Q5_K => Dot<Q5KFormat>(row, x, isa),
        WeightType.Q6_K => Dot<Q6KFormat>(row, x, isa),
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a block-quantized weight type"),
    };

    private static float Dot<TQ>(ReadOnlySpan<byte> row, ReadOnlySpan<float> x, Isa isa) where TQ : IQuantFormat
    {
        var a = new byte[QuantizedActivations.ByteCount(TQ.Activation, x.Length)];
        QuantizedActivations.Quantize(TQ.Activation, x, a, isa);
        return TQ.Dot(ref Unsafe.AsRef(in row[0]), ref a[0], x.Length / TQ.BlockSize, isa);
    }

    private struct Job
    {
        public byte* W, A;
        public nint RowBytes, ActivationBytes;
        public float* Y;
        public int Rows, Blocks, Tokens;
        public Isa Isa;
    }

    private static void Multiply<TQ>(in WeightMatrix w, float* x, float* y, int tokens, WorkerPool? pool, Isa isa) where TQ : IQuantFormat
    {
        int perToken = QuantizedActivations.ByteCount(TQ.Activation, w.Cols);
        var scratch = Scratch(checked(perToken * tokens));
        fixed (byte* a = scratch)
        {
            for (int t = 0; t < tokens; t++)
                QuantizedActivations.Quantize(TQ.Activation, new ReadOnlySpan<float>(x + (nint)t * w.Cols, w.Cols), new Span<byte>(a + (nint)t * perToken, perToken), isa);
            var job = new Job
            {
                W = w.Data, A = a, RowBytes = (nint)w.RowBytes, ActivationBytes = perToken, Y = y,
                Rows = w.Rows, Blocks = w.Cols / TQ.BlockSize, Tokens = tokens, Isa = isa,
            };
            int blocks = (w.Rows + RowBlock - 1) / RowBlock;
            if (pool is null || (long)w.Rows * w.Cols * tokens < 32_768) Run<TQ>(&job, 0, blocks, 0);
            else pool.Run(&Run<TQ>, &job, blocks);
        }
    }

    private static void Run<TQ>(void* state, int startBlock, int endBlock, int worker) where TQ : IQuantFormat
    {
        ref Job job = ref Unsafe.AsRef<Job>(state);
        Span<float> dst = stackalloc float[4];
        int end = Math.Min(endBlock * RowBlock, job.Rows);
        for (int r = startBlock * RowBlock; r < end; r++)
        {
            ref byte row = ref Unsafe.AsRef<byte>(job.W + r * job.RowBytes);
            for (int t = 0; t < job.Tokens; t += 4)
            {
                int n = Math.Min(4, job.Tokens - t);
                TQ.DotTokens(ref row, ref Unsafe.AsRef<byte>(job.A + t * job.ActivationBytes), job.ActivationBytes, n, job.Blocks, dst, job.Isa);
                for (int k = 0; k < n; k++) job.Y[(nint)(t + k) * job.Rows + r] = dst[k];
            }
        }
    }
}
