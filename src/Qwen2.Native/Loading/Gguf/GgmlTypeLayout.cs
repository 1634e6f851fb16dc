using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>
/// The block layout of every <see cref="GgmlType"/> (elements and bytes per block, from ggml's type traits), so a
/// file's sizes and offsets can be checked even for tensors of types the engine does not compute with, and the
/// mapping of the supported ones to <see cref="WeightType"/>.
/// </summary>
internal static class GgmlTypeLayout
{
    private static readonly Dictionary<GgmlType, (int Size, int Bytes, WeightType? Weight)> Table = new()
    {
        [GgmlType.F32] = (1, 4, WeightType.F32),
        [GgmlType.F16] = (1, 2, WeightType.F16),
        [GgmlType.BF16] = (1, 2, WeightType.BF16),
        [GgmlType.Q4_0] = (32, 18, WeightType.Q4_0),
        [GgmlType.Q4_1] = (32, 20, WeightType.Q4_1),
        [GgmlType.Q5_0] = (32, 22, WeightType.Q5_0),
        [GgmlType.Q5_1] = (32, 24, WeightType.Q5_1),
        [GgmlType.Q8_0] = (32, 34, WeightType.Q8_0),
        [GgmlType.Q8_1] = (32, 36, null),
        [GgmlType.Q2_K] = (256, 84, null),
        [GgmlType.Q3_K] = (256, 110, null),
        [GgmlType.Q4_K] = (256, 144, WeightType.Q4_K),
        [GgmlType.Q5_K] = (256, 176, WeightType.Q5_K),
        [GgmlType.Q6_K] = (256, 210, WeightType.Q6_K),
        [GgmlType.Q8_K] = (256, 292, null),
        [GgmlType.IQ2_XXS] = (256, 66, null),
        [GgmlType.IQ2_XS] = (256, 74, null),
        [GgmlType.IQ3_XXS] = (256, 98, null),
        [GgmlType.IQ1_S] = (256, 50, null),
        [GgmlType.IQ4_NL] = (32, 18, null),
        [GgmlType.IQ3_S] = (256, 110, null),
        [GgmlType.IQ2_S] = (256, 82, null),
        [GgmlType.IQ4_XS] = (256, 136, null),
        [GgmlType.I8] = (1, 1, null),
        [GgmlType.I16] = (1, 2, null),
        [GgmlType.I32] = (1, 4, null),
        [GgmlType.I64] = (1, 8, null),
        [GgmlType.F64] = (1, 8, null),
        [GgmlType.IQ1_M] = (256, 56, null),
        [GgmlType.TQ1_0] = (256, 54, null),
        [GgmlType.TQ2_0] = (256, 66, null),
        [GgmlType.MXFP4] = (32, 17, null),
    };

    /// <summary>Whether ggml defines <paramref name="type"/>.</summary>
    public static bool IsKnown(GgmlType type) => Table.ContainsKey(type);

    /// <summary>Elements per block.</summary>
    public static int BlockSize(GgmlType type) => Table[type].Size;

    /// <summary>Bytes per block.</summary>
    public static int BlockBytes(GgmlType type) => Table[type].Bytes;

    /// <summary>The kernel format of <paramref name="type"/>, or null when the engine does not compute with it.</summary>
    public static WeightType? WeightTypeOf(GgmlType type) => Table.TryGetValue(type, out var e) ? e.Weight : null;

    /// <summary>The kernel format of <paramref name="type"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The engine does not compute with <paramref name="type"/>.</exception>
    public static WeightType ToWeightType(GgmlType type) =>
        WeightTypeOf(type) ?? throw new ArgumentOutOfRangeException(nameof(type), type, $"the engine computes with {SupportedList}, not {type}");

    /// <summary>The ggml type that stores <paramref name="type"/> (the inverse of <see cref="ToWeightType"/>).</summary>
    public static GgmlType FromWeightType(WeightType type) =>
        Table.First(e => e.Value.Weight == type).Key;

    /// <summary>The types the engine computes with, for error messages.</summary>
    public static string SupportedList => string.Join(", ", Table.Where(e => e.Value.Weight is not null).Select(e => e.Key));
}
