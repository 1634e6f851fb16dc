using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>Every weight of the model, as the forward pass reads them (llama2.c's TransformerWeights).</summary>
internal sealed class Qwen2Weights
{
    public required WeightMatrix Embed;        // [vocab, hidden], one row looked up per token
    public required LayerWeights[] Layers;     // [layers]
    public required float[] Norm;              // [hidden], the final RMSNorm
    public required WeightMatrix? LmHead;      // [vocab, hidden]; Embed itself when tie_word_embeddings; null for an embedding model
    public required float[] InverseFrequencies; // [headDim / 2], RoPE's 1 / theta^(2j/d)
}
