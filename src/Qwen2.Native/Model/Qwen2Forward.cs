using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>
/// One forward step of Qwen2, read top to bottom as the math (docs/ARCHITECTURE.md, ../shared/QWEN2.md): the model says
/// what is computed, the kernels how fast. The tokens of several sequences run together through every weight matrix;
/// only RoPE positions and attention are per sequence. The caller has validated the call and taken room in every cache.
/// </summary>
internal static class Qwen2Forward
{
    /// <summary>
    /// Runs <paramref name="tokens"/> (the sequences of <paramref name="batch"/>, concatenated) through the model, appends
    /// each sequence's keys and values to its cache, and writes the selected rows, sequence after sequence: logits, or
    /// with <paramref name="hiddenStates"/> the final-normed hidden states (an embedding model's output; no lm_head).
    /// </summary>
    public static void Run(Qwen2Weights w, Qwen2Config c, ReadOnlySpan<int> tokens, ReadOnlySpan<BatchSlice> batch,
        RunState s, Span<float> output, bool hiddenStates, WorkerPool pool)
    {
        int n = tokens.Length, half = c.HeadDim / 2;
        float eps = (float)c.RmsNormEps;
        var invFreq = w.InverseFrequencies;

        // A token's position is the number of tokens its cache has seen before it.
        foreach (var seq in batch)
            for (int t = 0; t < seq.Length; t++) s.Positions[seq.Start + t] = (seq.Cache?.Position ?? 0) + t;

        for (int t = 0; t < n; t++)
        {
            w.Embed.ReadRow(tokens[t], Row(s.X, t, c.HiddenSize));                                   // x = embed[token]
            Rope.Angles(s.Positions[t], invFreq, Row(s.Cos, t, half), Row(s.Sin, t, half));          // RoPE angles at its position
        }

        for (int l = 0; l < w.Layers.Length; l++)
        {
            var L = w.Layers[l];
            // Attention block: x = x + o_proj(attention(rope(q), rope(k), v)) over rmsnorm(x).
            RmsNorm.Apply(s.X, L.InputNorm, eps, s.Xn, n);                                            // xn = rmsnorm(x)
            MatMul.MultiplyShared(L.Q, s.Q, L.K, s.K, L.V, s.V, s.Xn, n, pool);                       // q, k, v = xn·Wqᵀ, xn·Wkᵀ, xn·Wvᵀ
            if (L.QBias is { } qb) Elementwise.AddBias(s.Q, qb);                                      // + their biases (Qwen2)
            if (L.KBias is { } kb) Elementwise.AddBias(s.K, kb);
            if (L.VBias is { } vb) Elementwise.AddBias(s.V, vb);
            if (L.QNorm is { } qn) RmsNorm.Apply(s.Q, qn, eps, s.Q, n * c.NumAttentionHeads);        // q, k = rmsnorm per head (Qwen3)
            if (L.KNorm is { } kn) RmsNorm.Apply(s.K, kn, eps, s.K, n * c.NumKeyValueHeads);
            RotateHeads(s.Q, c.NumAttentionHeads, c.HeadDim, s.Cos, s.Sin, n);                        // rope(q), rope(k)
            RotateHeads(s.K, c.NumKeyValueHeads, c.HeadDim, s.Cos, s.Sin, n);
            foreach (var seq in batch) Attend(c, L, l, seq, s, pool);                                 // att = softmax(q·kᵀ/√d)·v; cache += k, v
            MatMul.Multiply(L.O, s.Att, s.Xn, n, pool);                                               // o_proj(att)
            if (L.OBias is { } ob) Elementwise.AddBias(s.Xn, ob);                                     // + its bias (Qwen3 attention_bias)
            Elementwise.Add(s.X, s.Xn, s.X, pool: pool);                                              // residual

            // MLP block: x = x + down(silu(gate(h)) · up(h)), h = rmsnorm(x).
            RmsNorm.Apply(s.X, L.PostAttentionNorm, eps, s.Xn, n);                                    // h = rmsnorm(x)
            MatMul.MultiplyShared(L.Gate, s.Gate, L.Up, s.Up, default, default, s.Xn, n, pool);       // gate(h), up(h)
            Activations.SiluMul(s.Gate, s.Up, s.Gate, pool: pool);                                    // silu(gate) · up
            MatMul.Multiply(L.Down, s.Gate, s.Xn, n, pool);                                           // down(…)
            Elementwise.Add(s.X, s.Xn, s.X, pool: pool);                                              // residual
        }

        // Final RMSNorm and lm_head, only on the rows asked for: each sequence's last rows, gathered in order into xn
        // (or, for hidden states, straight into the output).
        var normed = hiddenStates ? output : s.Xn;
        int rows = 0;
        foreach (var seq in batch)
        {
            var last = s.X.Slice((seq.Start + seq.Length - seq.Rows) * c.HiddenSize, seq.Rows * c.HiddenSize);
            RmsNorm.Apply(last, w.Norm, eps, normed.Slice(rows * c.HiddenSize, seq.Rows * c.HiddenSize), seq.Rows);  // norm(x)
            rows += seq.Rows;
        }
        if (!hiddenStates) MatMul.Multiply(w.LmHead!.Value, s.Xn[..(rows * c.HiddenSize)], output, rows, pool);  // logits = norm(x)·Wlmᵀ
    }

    /// <summary>
    /// One sequence's attention in layer <paramref name="l"/>: its new queries see the keys its cache holds and its own
    /// new keys (causal, and windowed on sliding layers), then the new keys and values enter the cache. Attending before
    /// appending keeps a block exact when a sliding cache has less free room than the block is long.
    /// </summary>
    private static void Attend(Qwen2Config c, LayerWeights L, int l, in BatchSlice seq, RunState s, WorkerPool pool)
    {
        int q = c.NumAttentionHeads * c.HeadDim, kv = c.NumKeyValueHeads * c.HeadDim;
        var cache = seq.Cache?[l];
        var mask = (cache?.Visibility ?? AttentionMask.Causal) with { Window = L.SlidingWindow ? c.SlidingWindow : int.MaxValue };
        var keys = s.K.Slice(seq.Start * kv, seq.Length * kv);
        var values = s.V.Slice(seq.Start * kv, seq.Length * kv);
        var positions = s.Positions.Slice(seq.Start, seq.Length);
        Attention.Compute(s.Q.Slice(seq.Start * q, seq.Length * q), positions, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim,
            cache is null ? default : cache.Held, new KvBlock(keys, values, positions), mask,
            s.Att.Slice(seq.Start * q, seq.Length * q), s.Scores, pool);
        cache?.Append(keys, values, seq.Length);
    }

    /// <summary>Rotates every head of every token by its own position's angles.</summary>
    private static void RotateHeads(Span<float> x, int heads, int headDim, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin, int n)
    {
        int width = heads * headDim, half = headDim / 2;
        for (int t = 0; t < n; t++) Rope.Apply(x.Slice(t * width, width), heads, headDim, cos.Slice(t * half, half), sin.Slice(t * half, half));
    }

    private static Span<float> Row(Span<float> m, int row, int width) => m.Slice(row * width, width);
}
