namespace Qwen2.Kernels;

/// <summary>Block layouts and conversions of <see cref="WeightType"/> elements.</summary>
public static class WeightTypes
{
    /// <summary>Elements per block: 1 for F32, BF16 and F16 (a block-quantized format stores several in one block).</summary>
    public static int BlockSize(WeightType type) => Layout(type).Size;

    /// <summary>Whether <paramref name="type"/> is block-quantized (its dot products run on quantized activations).</summary>
    public static bool IsQuantized(WeightType type) => BlockSize(type) > 1;

    /// <summary>Bytes one block occupies: 4 for F32, 2 for BF16 and F16.</summary>
    public static int BlockBytes(WeightType type) => Layout(type).Bytes;

    /// <summary>Bytes that <paramref name="elements"/> elements of <paramref name="type"/> occupy; they must fill whole blocks.</summary>
    public static long ByteCount(WeightType type, long elements)
    {
        var (size, bytes) = Layout(type);
        ArgumentOutOfRangeException.ThrowIfNegative(elements);
        if (elements % size != 0) throw new ArgumentException($"{elements} elements do not fill whole {type} blocks of {size}", nameof(elements));
        return checked(elements / size * bytes);
    }

    /// <summary>Bytes per element, for the formats whose blocks are single elements (F32, BF16, F16).</summary>
    public static int SizeOf(WeightType type)
    {
        var (size, bytes) = Layout(type);
        if (size != 1) throw new ArgumentException($"{type} stores blocks of {size} elements, not single elements; use {nameof(ByteCount)}", nameof(type));
        return bytes;
    }

    // The one place a WeightType meets its format type (the block-quantized ones through QuantizedProduct.Format).
    private static (int Size, int Bytes) Layout(WeightType type) => type switch
    {
        WeightType.F32 => Of<F32Row>(),
        WeightType.BF16 => Of<Bf16Row>(),
        WeightType.F16 => Of<F16Row>(),
        _ => QuantizedProduct.Format(type).Layout,
    };

    private static (int, int) Of<TF>() where TF : IWeightFormat => (TF.BlockSize, TF.BlockBytes);

    /// <summary>Widens <paramref name="source"/> (elements of <paramref name="type"/>) into float32; block-quantized types are dequantized with ggml's arithmetic.</summary>
    public static void ToSingle(WeightType type, ReadOnlySpan<byte> source, Span<float> destination)
    {
        int n = destination.Length;
        long need = ByteCount(type, n);
        if (source.Length < need)
            throw new ArgumentException($"source holds {source.Length} bytes, {n} {type} elements need {need}", nameof(source));
        switch (type)
        {
            case WeightType.F32:
                System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(source)[..n].CopyTo(destination);
                break;
            case WeightType.BF16:
                var b = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(source);
                for (int i = 0; i < n; i++) destination[i] = Bf16Row.Widen(b[i]);
                break;
            case WeightType.F16:
                var h = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(source);
                System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(h[..n], destination);
                break;
            case var _ when IsQuantized(type):
                QuantizedProduct.Dequantize(type, source, destination);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "unknown weight type");
        }
    }
}
