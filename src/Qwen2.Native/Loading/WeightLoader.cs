using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>Finds each tensor Qwen2 needs in a source, by that source's names, checks its shape and type, and wraps it without copying.</summary>
internal static unsafe class WeightLoader
{
    public static Qwen2Weights Load(ITensorSource source, TensorNames names, Qwen2Config c)
    {
        int h = c.HiddenSize, q = c.NumAttentionHeads * c.HeadDim, kv = c.NumKeyValueHeads * c.HeadDim, inter = c.IntermediateSize;
        var embed = Matrix(source, names.Embed, c.VocabSize, h);
        // Grown layer by layer, not sized from the config: a layer count of 2147483647 must fail at the first missing
        // tensor, not allocate an array of two billion entries first.
        var layers = new List<LayerWeights>();
        for (int i = 0; i < c.NumHiddenLayers; i++)
        {
            WeightMatrix M(LayerTensor t, int rows, int cols) => Matrix(source, names.Of(i, t), rows, cols);
            float[] V(LayerTensor t, int length) => Vector(source, names.Of(i, t), length);
            float[]? Optional(bool present, LayerTensor t, int length) => present ? V(t, length) : null;
            layers.Add(new LayerWeights
            {
                Q = M(LayerTensor.Q, q, h), K = M(LayerTensor.K, kv, h), V = M(LayerTensor.V, kv, h), O = M(LayerTensor.O, h, q),
                QBias = Optional(c.AttentionBias, LayerTensor.QBias, q), KBias = Optional(c.AttentionBias, LayerTensor.KBias, kv),
                VBias = Optional(c.AttentionBias, LayerTensor.VBias, kv),
                QNorm = Optional(c.QkNorm, LayerTensor.QNorm, c.HeadDim), KNorm = Optional(c.QkNorm, LayerTensor.KNorm, c.HeadDim),
                OBias = Optional(c.OProjBias, LayerTensor.OBias, h),
                Gate = M(LayerTensor.Gate, inter, h), Up = M(LayerTensor.Up, inter, h), Down = M(LayerTensor.Down, h, inter),
                InputNorm = V(LayerTensor.AttentionNorm, h), PostAttentionNorm = V(LayerTensor.FfnNorm, h),
                SlidingWindow = c.LayerUsesSlidingWindow(i),
            });
        }
        var norm = Vector(source, names.Norm, h);
        // The config decides tying (config.json's tie_word_embeddings; for GGUF, whether output.weight exists). An
        // embedding model's head is never mapped: Qwen3-Embedding ships none, whatever its config says about tying.
        WeightMatrix? lmHead = c.LastTokenPooling ? null : c.TieWordEmbeddings ? embed : Matrix(source, names.LmHead, c.VocabSize, h);
        return new Qwen2Weights
        {
            Embed = embed, Layers = layers.ToArray(), Norm = norm, LmHead = lmHead,
            InverseFrequencies = Rope.InverseFrequencies(c.HeadDim, c.RopeTheta),
        };
    }

    /// <summary>The tensor <paramref name="name"/> of <paramref name="source"/>, checked to have <paramref name="shape"/> and rows of whole blocks.</summary>
    internal static SourceTensor Find(ITensorSource source, string name, params long[] shape)
    {
        if (!source.TryGet(name, out var t)) throw new CheckpointException(source.MissingWhere, "is missing from the checkpoint", name);
        if (!t.Shape.SequenceEqual(shape))
            throw new CheckpointException(t.File, $"has shape [{string.Join(", ", t.Shape)}], expected [{string.Join(", ", shape)}] from {source.ConfigName}", name, "shape");
        int block = WeightTypes.BlockSize(t.Type);
        if (shape[^1] % block != 0)
            throw new CheckpointException(t.File, $"has rows of {shape[^1]} elements, not a whole number of {t.Type} blocks of {block}", name, "type");
        return t;
    }

    private static WeightMatrix Matrix(ITensorSource source, string name, int rows, int cols)
    {
        var t = Find(source, name, rows, cols);
        return new WeightMatrix(t.Data, rows, cols, t.Type);
    }

    private static float[] Vector(ITensorSource source, string name, int length)
    {
        var t = Find(source, name, length);
        var m = new WeightMatrix(t.Data, 1, length, t.Type);
        var v = new float[length];
        m.ReadRow(0, v);
        return v;
    }
}
