using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Qwen2.Kernels;

/// <summary>Where the quantized prefill tiles run at 512 bits (<see cref="Block32.WideTile{T}"/>, <see cref="KTile.RunPrepared512{TK}"/>).</summary>
internal static class WideTiles
{
    /// <summary>
    /// Accelerated AVX-512 with BW and DQ, no AVX-VNNI (whose 256-bit vpdpbusd and vpdpwssd the 256-bit tiles take),
    /// and not an AMD CPU: Zen 4, AMD's one core with AVX-512 and no AVX-VNNI, runs a 512-bit operation as two 256-bit
    /// halves, and there the 512-bit signed tile ran about 0.9 of the 256-bit ones and the K-quant tile within a few
    /// percent of its 256-bit form either way (bench/results/PeersQuantized-zen4-kquant-steps.md).
    /// </summary>
    public static readonly bool Preferred = Vector512.IsHardwareAccelerated && Avx512BW.IsSupported && Avx512DQ.IsSupported
        && !AvxVnni.IsSupported && !IsAmd();

    private static bool IsAmd()
    {
        if (!X86Base.IsSupported) return false;
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        return ebx == 0x68747541 && edx == 0x69746e65 && ecx == 0x444d4163; // "AuthenticAMD"
    }
}
