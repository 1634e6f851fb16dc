using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>Which paths this process can run, and the one kernels pick by default.</summary>
public static class IsaSupport
{
    /// <summary>The widest accelerated path: Vector512, then Vector256, then scalar.</summary>
    public static Isa Best { get; } =
        Vector512.IsHardwareAccelerated ? Isa.Vector512 :
        Vector256.IsHardwareAccelerated ? Isa.Vector256 : Isa.Scalar;

    /// <summary>True when <paramref name="isa"/> is hardware accelerated here (scalar always is).</summary>
    public static bool IsSupported(Isa isa) => isa switch
    {
        Isa.Scalar => true,
        Isa.Vector256 => Vector256.IsHardwareAccelerated,
        Isa.Vector512 => Vector512.IsHardwareAccelerated,
        _ => false,
    };

    /// <summary>Every path this process can run, scalar first.</summary>
    public static IReadOnlyList<Isa> Supported { get; } =
        new[] { Isa.Scalar, Isa.Vector256, Isa.Vector512 }.Where(IsSupported).ToArray();

    internal static Isa Check(Isa isa)
    {
        if (!IsSupported(isa))
            throw new PlatformNotSupportedException($"The {isa} kernel path is not hardware accelerated on this CPU.");
        return isa;
    }
}
