namespace Qwen2.Kernels;

/// <summary>How a quantized format's dot product wants the float32 activations quantized (see <see cref="QuantizedActivations"/>).</summary>
internal enum ActivationFormat
{
    /// <summary>
    /// Blocks of 32: float32 scale d, float32 s = d · Σq, then 32 int8 q = round(x / d) with d = max|x| / 127
    /// (40 bytes). For Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 weights; s serves the formats with a minimum.
    /// </summary>
    Q8,
    /// <summary>
    /// Blocks of 256: float32 scale d, 256 int8 q = round(x / d) with d = max|x| / 127, then 16 int16 sums of
    /// consecutive groups of 16 q (292 bytes). For Q4_K, Q5_K and Q6_K weights.
    /// </summary>
    Q8K,
}
