using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>One decoder layer's weights: matrices point into the mapped files; norms and biases are small float32 copies.</summary>
internal sealed class LayerWeights
{
    public required WeightMatrix Q, K, V, O, Gate, Up, Down;
    public required float[] QBias, KBias, VBias, InputNorm, PostAttentionNorm;
    public required bool SlidingWindow;
}
