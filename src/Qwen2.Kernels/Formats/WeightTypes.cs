namespace Qwen2.Kernels;

/// <summary>Sizes and conversions of <see cref="WeightType"/> elements.</summary>
public static class WeightTypes
{
    /// <summary>Bytes per element.</summary>
    public static int SizeOf(WeightType type) => type switch
    {
        WeightType.F32 => 4,
        WeightType.BF16 or WeightType.F16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "unknown weight type"),
    };

    /// <summary>Widens <paramref name="source"/> (elements of <paramref name="type"/>) into float32.</summary>
    public static void ToSingle(WeightType type, ReadOnlySpan<byte> source, Span<float> destination)
    {
        int n = destination.Length;
        if (source.Length < n * SizeOf(type))
            throw new ArgumentException($"source holds {source.Length} bytes, {n} {type} elements need {n * SizeOf(type)}", nameof(source));
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
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "unknown weight type");
        }
    }
}
