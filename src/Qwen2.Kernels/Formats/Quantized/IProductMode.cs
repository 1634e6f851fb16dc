using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

/// <summary>
/// How a 256-bit K-quant kernel forms its integer products, fixed when the JIT specializes it: pair sums
/// (vpmaddubsw) times each scale, or quad sums (vpdpbusd) packed to int16 and then times the scales. Both are exact;
/// <see cref="NativeProducts"/> takes quads where AVX-VNNI exists, and tests force either layout on any AVX2 CPU.
/// </summary>
internal interface IProductMode
{
    /// <summary>True for quad sums.</summary>
    static abstract bool Quads { get; }
}

/// <summary>Quads where the CPU has AVX-VNNI, pairs elsewhere: what the kernels run.</summary>
internal readonly struct NativeProducts : IProductMode { public static bool Quads => AvxVnni.IsSupported; }

/// <summary>Always pair sums.</summary>
internal readonly struct PairProducts : IProductMode { public static bool Quads => false; }

/// <summary>Always quad sums (vpdpbusd, or its exact AVX2 equivalent without VNNI).</summary>
internal readonly struct QuadProducts : IProductMode { public static bool Quads => true; }
