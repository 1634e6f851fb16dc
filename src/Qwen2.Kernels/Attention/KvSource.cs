using System.Runtime.CompilerServices;

namespace Qwen2.Kernels;

/// <summary>Where the keys and values of past or current tokens live: pages of 2^Shift tokens each.</summary>
internal unsafe struct KvSource
{
    public nint* Pages;
    public nint KeyOffset, ValueOffset;
    public int Shift, Mask, Count;
    public int* Positions;

    public static KvSource Flat(nint* page, nint valueOffset, int* positions, int count) =>
        new() { Pages = page, KeyOffset = 0, ValueOffset = valueOffset, Shift = 30, Mask = (1 << 30) - 1, Positions = positions, Count = count };

    public static KvSource Paged(nint* pages, nint keyOffset, nint valueOffset, int shift, int* positions, int count) =>
        new() { Pages = pages, KeyOffset = keyOffset, ValueOffset = valueOffset, Shift = shift, Mask = (1 << shift) - 1, Positions = positions, Count = count };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly float* Key(int k, int row) => (float*)Pages[k >> Shift] + KeyOffset + (nint)(k & Mask) * row;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly float* Value(int k, int row) => (float*)Pages[k >> Shift] + ValueOffset + (nint)(k & Mask) * row;
}
