using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>
/// The scratch of one forward call (llama2.c's RunState): every activation named and shaped, all cut from one array
/// rented from the model's pool, so a decode step allocates nothing. Shapes are row-major, one row per token of the
/// call (n = the tokens of every sequence in it, concatenated).
/// </summary>
internal readonly ref struct RunState
{
    public readonly Span<float> X;          // [n, hidden]               the residual stream
    public readonly Span<float> Xn;         // [n, hidden]               x normed; then the output of o_proj or down
    public readonly Span<float> Q;          // [n, heads · headDim]
    public readonly Span<float> K;          // [n, kvHeads · headDim]
    public readonly Span<float> V;          // [n, kvHeads · headDim]
    public readonly Span<float> Att;        // [n, heads · headDim]      attention output, heads concatenated
    public readonly Span<float> Gate;       // [n, intermediate]         gate(x); then silu(gate) · up
    public readonly Span<float> Up;         // [n, intermediate]
    public readonly Span<float> Cos, Sin;   // [n, headDim / 2]          RoPE angles at each token's position
    public readonly Span<float> Scores;     // attention's per-thread score rows (Attention.ScratchLength)
    public readonly Span<int> Positions;    // [n]                       each token's absolute position

    /// <summary>Floats a call of <paramref name="n"/> tokens needs, with <paramref name="scores"/> for attention.</summary>
    public static long Floats(Qwen2Config c, int n, int scores) =>
        (long)n * (2 * c.HiddenSize + 2 * QWidth(c) + 2 * KvWidth(c) + 2 * c.IntermediateSize + c.HeadDim) + scores;

    /// <summary>Floats of attention scratch for queries that see up to <paramref name="keys"/> keys.</summary>
    public static int ScoreFloats(int keys, int threads) => Attention.ScratchLength(keys, threads);

    public RunState(Qwen2Config c, int n, int scores, Span<float> buffer, Span<int> positions)
    {
        int used = 0;
        Span<float> Take(Span<float> from, int length)
        {
            used += length;
            return from.Slice(used - length, length);
        }
        X = Take(buffer, n * c.HiddenSize);
        Xn = Take(buffer, n * c.HiddenSize);
        Q = Take(buffer, n * QWidth(c));
        K = Take(buffer, n * KvWidth(c));
        V = Take(buffer, n * KvWidth(c));
        Att = Take(buffer, n * QWidth(c));
        Gate = Take(buffer, n * c.IntermediateSize);
        Up = Take(buffer, n * c.IntermediateSize);
        Cos = Take(buffer, n * (c.HeadDim / 2));
        Sin = Take(buffer, n * (c.HeadDim / 2));
        Scores = Take(buffer, scores);
        Positions = positions[..n];
    }

    private static int QWidth(Qwen2Config c) => c.NumAttentionHeads * c.HeadDim;
    private static int KvWidth(Qwen2Config c) => c.NumKeyValueHeads * c.HeadDim;
}
