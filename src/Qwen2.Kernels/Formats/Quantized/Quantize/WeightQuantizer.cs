namespace Qwen2.Kernels;

/// <summary>
/// Quantizes float32 weights into ggml's block formats with llama.cpp's reference algorithms (no importance matrix),
/// the inverse of <see cref="WeightTypes.ToSingle"/>. Scalar and deterministic: the same floats give the same bytes on
/// every machine; callers parallelize over rows.
/// </summary>
public static class WeightQuantizer
{
    /// <summary>
    /// Quantizes <paramref name="source"/> (a whole number of <paramref name="type"/> blocks) into
    /// <paramref name="destination"/> (at least <see cref="WeightTypes.ByteCount"/> bytes).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="type"/> is not block-quantized, the values do not fill whole
    /// blocks, the destination is too small, or a value is NaN or infinite (the message gives its index).</exception>
    public static void Quantize(WeightType type, ReadOnlySpan<float> source, Span<byte> destination)
    {
        if (!WeightTypes.IsQuantized(type)) throw new ArgumentException($"{type} is not a block-quantized type", nameof(type));
        long need = WeightTypes.ByteCount(type, source.Length);
        if (destination.Length < need)
            throw new ArgumentException($"destination holds {destination.Length} bytes, {source.Length} {type} elements need {need}", nameof(destination));
        // ggml would write garbage scales for these; a file must never carry them.
        int bad = FirstNonFinite(source);
        if (bad >= 0) throw new ArgumentException($"value {bad} is {source[bad]}; only finite weights can be quantized", nameof(source));
        int size = WeightTypes.BlockSize(type), bytes = WeightTypes.BlockBytes(type);
        Quantizer quantize = type switch
        {
            WeightType.Q8_0 => Block32Quantizer.Q8_0,
            WeightType.Q4_0 => Block32Quantizer.Q4_0,
            WeightType.Q4_1 => Block32Quantizer.Q4_1,
            WeightType.Q5_0 => Block32Quantizer.Q5_0,
            WeightType.Q5_1 => Block32Quantizer.Q5_1,
            WeightType.Q4_K => KQuantizer.Q4_K,
            WeightType.Q5_K => KQuantizer.Q5_K,
            WeightType.Q6_K => KQuantizer.Q6_K,
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, "no quantizer for this type"),
        };
        for (int b = 0; b < source.Length / size; b++) quantize(source.Slice(b * size, size), destination.Slice(b * bytes, bytes));
    }

    private delegate void Quantizer(ReadOnlySpan<float> block, Span<byte> destination);

    private static int FirstNonFinite(ReadOnlySpan<float> x)
    {
        for (int i = 0; i < x.Length; i++)
            if (!float.IsFinite(x[i])) return i;
        return -1;
    }
}
