using System.Runtime.InteropServices;
using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>
/// <see cref="ModelOptions.Quantize"/>: a model's matrices quantized at load into native memory that this object owns
/// (freed on <see cref="Dispose"/>). Each matrix gets the type llama.cpp's quantizer would give it for that pure type
/// (<see cref="TensorTypeRules"/>: the lm_head, and a tied embedding, Q6_K or Q8_0; K-quant fallbacks for rows that are
/// not whole super-blocks); norms and biases are untouched. A matrix whose rule falls back to F16 stays as loaded.
/// </summary>
internal sealed unsafe class QuantizedWeights : IDisposable
{
    private readonly List<nint> _allocations = new();

    private QuantizedWeights() { }

    /// <summary>The weights the forward pass reads.</summary>
    public Qwen2Weights Weights { get; private set; } = null!;

    /// <summary>Weight bytes one decode step reads: every matrix, an untied embedding's one row, norms and biases.</summary>
    public long DecodeBytesPerToken { get; private set; }

    /// <summary>Quantizes <paramref name="loaded"/>'s matrices to <paramref name="type"/> on <paramref name="threads"/> threads.</summary>
    public static QuantizedWeights Create(Qwen2Weights loaded, Qwen2Config c, WeightType type, LayerBoost boost, int threads, string directory)
    {
        var q = new QuantizedWeights();
        try
        {
            // As llama.cpp's quantizer sees a file without output.weight: token_embd then takes the head's type.
            bool tied = c.TieWordEmbeddings || c.LastTokenPooling;
            WeightMatrix Q(WeightMatrix m, string name) => q.Quantize(m, name, type, boost, c, threads, directory);
            var embed = Q(loaded.Embed, "token_embd.weight");
            var layers = new LayerWeights[loaded.Layers.Length];
            long vectors = (loaded.Norm.Length + (long)loaded.InverseFrequencies.Length) * sizeof(float);
            for (int i = 0; i < layers.Length; i++)
            {
                var l = loaded.Layers[i];
                string b = $"blk.{i}.";
                layers[i] = new LayerWeights
                {
                    Q = Q(l.Q, b + "attn_q.weight"), K = Q(l.K, b + "attn_k.weight"), V = Q(l.V, b + "attn_v.weight"), O = Q(l.O, b + "attn_output.weight"),
                    Gate = Q(l.Gate, b + "ffn_gate.weight"), Up = Q(l.Up, b + "ffn_up.weight"), Down = Q(l.Down, b + "ffn_down.weight"),
                    QBias = l.QBias, KBias = l.KBias, VBias = l.VBias, QNorm = l.QNorm, KNorm = l.KNorm, OBias = l.OBias,
                    InputNorm = l.InputNorm, PostAttentionNorm = l.PostAttentionNorm,
                    SlidingWindow = l.SlidingWindow,
                };
                var n = layers[i];
                vectors += ((n.QBias?.Length ?? 0) + (n.KBias?.Length ?? 0) + (n.VBias?.Length ?? 0) + (n.QNorm?.Length ?? 0) + (n.KNorm?.Length ?? 0) + (n.OBias?.Length ?? 0)
                    + n.InputNorm.Length + n.PostAttentionNorm.Length) * (long)sizeof(float);
                q.DecodeBytesPerToken += n.Q.ByteLength + n.K.ByteLength + n.V.ByteLength + n.O.ByteLength + n.Gate.ByteLength + n.Up.ByteLength + n.Down.ByteLength;
            }
            WeightMatrix? lmHead = loaded.LmHead is not { } head ? null : tied ? embed : Q(head, "output.weight");
            q.DecodeBytesPerToken += vectors + (lmHead is { } headMatrix && tied ? headMatrix.ByteLength : (lmHead?.ByteLength ?? 0) + embed.RowBytes);
            q.Weights = new Qwen2Weights { Embed = embed, Layers = layers, Norm = loaded.Norm, LmHead = lmHead, InverseFrequencies = loaded.InverseFrequencies };
            return q;
        }
        catch
        {
            q.Dispose();
            throw;
        }
    }

    private WeightMatrix Quantize(WeightMatrix m, string name, WeightType type, LayerBoost boost, Qwen2Config c, int threads, string directory)
    {
        var target = TensorTypeRules.Choose(type, boost, name, m.Cols, 2, c.NumHiddenLayers, c.TieWordEmbeddings || c.LastTokenPooling);
        if (!WeightTypes.IsQuantized(target)) return m;
        long bytes = WeightTypes.ByteCount(target, (long)m.Rows * m.Cols);
        byte* p = (byte*)NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 1), 64);
        _allocations.Add((nint)p);
        MatrixQuantizer.QuantizeRows(m, 0, m.Rows, target, p, threads, directory, name);
        return new WeightMatrix(p, m.Rows, m.Cols, target);
    }

    /// <summary>Frees the quantized matrices; the model must no longer read them.</summary>
    public void Dispose()
    {
        foreach (nint p in _allocations) NativeMemory.AlignedFree((void*)p);
        _allocations.Clear();
    }
}
