using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>Finds each tensor Qwen2 needs, checks its shape and dtype, and wraps it without copying.</summary>
internal static unsafe class WeightLoader
{
    public static Qwen2Weights Load(CheckpointFiles files, Qwen2Config c)
    {
        int h = c.HiddenSize, q = c.NumAttentionHeads * c.HeadDim, kv = c.NumKeyValueHeads * c.HeadDim;
        var embed = Matrix(files, "model.embed_tokens.weight", c.VocabSize, h);
        // Grown layer by layer, not sized from config.json: num_hidden_layers 2147483647 must fail at the first missing
        // tensor, not allocate an array of two billion entries first.
        var layers = new List<LayerWeights>();
        for (int i = 0; i < c.NumHiddenLayers; i++)
        {
            string p = $"model.layers.{i}.";
            layers.Add(new LayerWeights
            {
                Q = Matrix(files, p + "self_attn.q_proj.weight", q, h),
                K = Matrix(files, p + "self_attn.k_proj.weight", kv, h),
                V = Matrix(files, p + "self_attn.v_proj.weight", kv, h),
                O = Matrix(files, p + "self_attn.o_proj.weight", h, q),
                QBias = Vector(files, p + "self_attn.q_proj.bias", q),
                KBias = Vector(files, p + "self_attn.k_proj.bias", kv),
                VBias = Vector(files, p + "self_attn.v_proj.bias", kv),
                Gate = Matrix(files, p + "mlp.gate_proj.weight", c.IntermediateSize, h),
                Up = Matrix(files, p + "mlp.up_proj.weight", c.IntermediateSize, h),
                Down = Matrix(files, p + "mlp.down_proj.weight", h, c.IntermediateSize),
                InputNorm = Vector(files, p + "input_layernorm.weight", h),
                PostAttentionNorm = Vector(files, p + "post_attention_layernorm.weight", h),
                SlidingWindow = c.LayerUsesSlidingWindow(i),
            });
        }
        var norm = Vector(files, "model.norm.weight", h);
        // tie_word_embeddings is read, never guessed from which tensors the file has.
        var lmHead = c.TieWordEmbeddings ? embed : Matrix(files, "lm_head.weight", c.VocabSize, h);
        return new Qwen2Weights
        {
            Embed = embed, Layers = layers.ToArray(), Norm = norm, LmHead = lmHead,
            InverseFrequencies = Rope.InverseFrequencies(c.HeadDim, c.RopeTheta),
        };
    }

    private static (SafeTensorsFile File, TensorInfo Info) Find(CheckpointFiles files, string name, params long[] shape)
    {
        if (!files.TryGet(name, out var file, out var info))
        {
            string where = files.Files.Count == 1 ? files.Files[0].Path : Path.Combine(files.Directory, CheckpointFiles.IndexFile);
            throw new CheckpointException(where, "is missing from the checkpoint", name);
        }
        if (!info.Shape.SequenceEqual(shape))
            throw new CheckpointException(file.Path, $"has shape {info.ShapeText}, expected [{string.Join(", ", shape)}] from config.json", name, "shape");
        return (file, info);
    }

    private static WeightMatrix Matrix(CheckpointFiles files, string name, int rows, int cols)
    {
        var (file, info) = Find(files, name, rows, cols);
        return new WeightMatrix(file.Pointer(info), rows, cols, file.WeightTypeOf(info));
    }

    private static float[] Vector(CheckpointFiles files, string name, int length)
    {
        var (file, info) = Find(files, name, length);
        var m = new WeightMatrix(file.Pointer(info), 1, length, file.WeightTypeOf(info));
        var v = new float[length];
        m.ReadRow(0, v);
        return v;
    }
}
