
namespace Qwen2.Reference;

/// <summary>
/// Qwen2's forward pass in float64 with plain loops, written from /work/shared/QWEN2.md and sharing no code with the
/// engine's forward path or kernels: the reference that quantized files are measured against (on their dequantized
/// weights, so only the arithmetic of the engines is measured, not the quantization itself).
/// </summary>
public static class ReferenceForward
{
    /// <summary>The logits of every position of <paramref name="tokens"/> (causal, no cache), one row per position.</summary>
    public static double[][] Logits(ReferenceModel m, IReadOnlyList<int> tokens)
    {
        var head = m.LmHead ?? throw new InvalidOperationException("the model has no lm_head (an embedding model)");
        var x = Hidden(m, tokens);
        var logits = new double[x.Length][];
        for (int p = 0; p < x.Length; p++) logits[p] = MatVec(head, m.Vocab, m.Hidden, RmsNorm(x[p], m.Norm, m.Eps), null);
        return logits;
    }

    /// <summary>
    /// The embedding of <paramref name="tokens"/> as sentence-transformers computes Qwen3-Embedding's (Transformer,
    /// Pooling lasttoken, Normalize): the last position's final-normed hidden state, its first
    /// <paramref name="dimensions"/> values (all by default) divided by their L2 norm.
    /// </summary>
    public static double[] Embedding(ReferenceModel m, IReadOnlyList<int> tokens, int? dimensions = null)
    {
        var x = Hidden(m, tokens);
        var last = RmsNorm(x[^1], m.Norm, m.Eps)[..(dimensions ?? m.Hidden)];
        double norm = Math.Sqrt(last.Sum(v => v * v));
        return last.Select(v => v / norm).ToArray();
    }

    /// <summary>The residual stream after the last layer at every position (before the final norm).</summary>
    private static double[][] Hidden(ReferenceModel m, IReadOnlyList<int> tokens)
    {
        int n = tokens.Count, h = m.Hidden;
        var x = new double[n][];
        for (int p = 0; p < n; p++)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(tokens[p]);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(tokens[p], m.Vocab);
            x[p] = new double[h];
            for (int j = 0; j < h; j++) x[p][j] = m.Embed[(long)tokens[p] * h + j];
        }
        for (int l = 0; l < m.Layers; l++) Layer(m, l, x);
        return x;
    }

    /// <summary>Greedy decoding: <paramref name="steps"/> argmax tokens after <paramref name="prompt"/>, recomputing from scratch each step.</summary>
    public static int[] Greedy(ReferenceModel m, IReadOnlyList<int> prompt, int steps)
    {
        var seq = prompt.ToList();
        var result = new int[steps];
        for (int s = 0; s < steps; s++)
        {
            var last = Logits(m, seq)[^1];
            result[s] = ArgMax(last);
            seq.Add(result[s]);
        }
        return result;
    }

    /// <summary>Index of the largest value (the first on ties).</summary>
    public static int ArgMax(IReadOnlyList<double> row)
    {
        int best = 0;
        for (int i = 1; i < row.Count; i++) if (row[i] > row[best]) best = i;
        return best;
    }

    private static void Layer(ReferenceModel m, int l, double[][] x)
    {
        var w = m.Blocks[l];
        int n = x.Length, h = m.Hidden, d = m.HeadDim, qRows = m.Heads * d, kvRows = m.KvHeads * d;
        var q = new double[n][];
        var k = new double[n][];
        var v = new double[n][];
        for (int p = 0; p < n; p++)
        {
            var a = RmsNorm(x[p], w.InputNorm, m.Eps);
            q[p] = MatVec(w.Wq, qRows, h, a, w.Bq);
            k[p] = MatVec(w.Wk, kvRows, h, a, w.Bk);
            v[p] = MatVec(w.Wv, kvRows, h, a, w.Bv);
            // Qwen3 (modeling_qwen3.py): q_norm / k_norm over each head's head_dim values, after the projection, before RoPE.
            if (w.QNorm is { } qn) for (int head = 0; head < m.Heads; head++) HeadNorm(q[p], head * d, d, qn, m.Eps);
            if (w.KNorm is { } kn) for (int head = 0; head < m.KvHeads; head++) HeadNorm(k[p], head * d, d, kn, m.Eps);
            // Rotate after the bias, before the key is used (the cache would hold rotated keys).
            for (int head = 0; head < m.Heads; head++) Rope(q[p], head * d, d, p, m.RopeTheta);
            for (int head = 0; head < m.KvHeads; head++) Rope(k[p], head * d, d, p, m.RopeTheta);
        }
        // Sliding window only where the config turns it on, and only for layers at index >= max_window_layers.
        int? window = m.SlidingWindow is { } sw && l >= m.MaxWindowLayers ? sw : null;
        int group = m.Heads / m.KvHeads;
        double scale = 1.0 / Math.Sqrt(d);
        for (int p = 0; p < n; p++)
        {
            var concat = new double[qRows];
            int first = window is { } win ? Math.Max(0, p - win + 1) : 0;
            for (int head = 0; head < m.Heads; head++)
            {
                int kvHead = head / group, qo = head * d, ko = kvHead * d;
                var scores = new double[p - first + 1];
                double max = double.NegativeInfinity;
                for (int t = first; t <= p; t++)
                {
                    double s = 0;
                    for (int j = 0; j < d; j++) s += q[p][qo + j] * k[t][ko + j];
                    scores[t - first] = s * scale;
                    max = Math.Max(max, scores[t - first]);
                }
                double sum = 0;
                for (int i = 0; i < scores.Length; i++) sum += scores[i] = Math.Exp(scores[i] - max);
                for (int t = first; t <= p; t++)
                {
                    double weight = scores[t - first] / sum;
                    for (int j = 0; j < d; j++) concat[qo + j] += weight * v[t][ko + j];
                }
            }
            var attn = MatVec(w.Wo, h, qRows, concat, w.Bo);
            for (int j = 0; j < h; j++) x[p][j] += attn[j];

            var b = RmsNorm(x[p], w.PostNorm, m.Eps);
            var gate = MatVec(w.Gate, m.Intermediate, h, b, null);
            var up = MatVec(w.Up, m.Intermediate, h, b, null);
            for (int j = 0; j < gate.Length; j++) gate[j] = gate[j] / (1 + Math.Exp(-gate[j])) * up[j];
            var down = MatVec(w.Down, h, m.Intermediate, gate, null);
            for (int j = 0; j < h; j++) x[p][j] += down[j];
        }
    }

    private static double[] RmsNorm(double[] x, float[] weight, double eps)
    {
        double ss = 0;
        foreach (double e in x) ss += e * e;
        double inv = 1 / Math.Sqrt(ss / x.Length + eps);
        var y = new double[x.Length];
        for (int j = 0; j < x.Length; j++) y[j] = x[j] * inv * weight[j];
        return y;
    }

    private static void HeadNorm(double[] x, int offset, int d, float[] weight, double eps)
    {
        double ss = 0;
        for (int j = 0; j < d; j++) ss += x[offset + j] * x[offset + j];
        double inv = 1 / Math.Sqrt(ss / d + eps);
        for (int j = 0; j < d; j++) x[offset + j] = x[offset + j] * inv * weight[j];
    }

    /// <summary>Rotate-half RoPE on x[offset..offset+d): dimension j pairs with j + d/2; inv_freq in float32 as Hugging Face computes it.</summary>
    private static void Rope(double[] x, int offset, int d, int position, double theta)
    {
        int half = d / 2;
        for (int j = 0; j < half; j++)
        {
            float invFreq = 1f / MathF.Pow((float)theta, 2f * j / d);
            double angle = position * (double)invFreq, cos = Math.Cos(angle), sin = Math.Sin(angle);
            double a = x[offset + j], b = x[offset + j + half];
            x[offset + j] = a * cos - b * sin;
            x[offset + j + half] = b * cos + a * sin;
        }
    }

    private static double[] MatVec(float[] w, int rows, int cols, double[] x, float[]? bias)
    {
        if (w.LongLength != (long)rows * cols || x.Length != cols)
            throw new ArgumentException($"a [{rows}, {cols}] product got {w.LongLength} weights and {x.Length} inputs");
        var y = new double[rows];
        // Rows are independent: parallel over rows, each row's sum in order, so the result does not depend on threads.
        Parallel.For(0, rows, r =>
        {
            double s = 0;
            long o = (long)r * cols;
            for (int c = 0; c < cols; c++) s += w[o + c] * x[c];
            y[r] = bias is null ? s : s + bias[r];
        });
        return y;
    }
}
