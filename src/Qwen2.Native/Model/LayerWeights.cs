using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>
/// One decoder layer's weights. Matrices are [out, in] views into the mapped files (q: heads·headDim × hidden, k and v:
/// kvHeads·headDim × hidden, o: hidden × heads·headDim, gate and up: intermediate × hidden, down: hidden × intermediate);
/// norms and biases are small float32 copies.
/// </summary>
internal sealed class LayerWeights
{
    public required WeightMatrix Q, K, V, O, Gate, Up, Down;
    public required float[]? QBias, KBias, VBias;            // [heads·headDim], [kvHeads·headDim] ×2; null without attention bias
    public float[]? QNorm, KNorm;                           // [headDim] each: Qwen3's per-head RMSNorm, null for Qwen2
    public float[]? OBias;                                  // [hidden]: Qwen3 with attention_bias only
    public required float[] InputNorm, PostAttentionNorm;   // [hidden] each
    public required bool SlidingWindow;                     // this layer sees only the last sliding_window keys
}
