using System.Runtime.CompilerServices;

namespace Qwen2.Kernels;

/// <summary>
/// The path the last kernel call on this thread dispatched to: each public kernel records, once per call, the resolved
/// path its loops then branch on (one thread-static store, no allocation; inner per-row or per-key loops record
/// nothing), so that tests can assert that the path they forced is the path that ran rather than one a library picked
/// for itself.
/// </summary>
internal static class KernelPath
{
    /// <summary>What <see cref="Last"/> reads before any kernel ran on this thread, or after <see cref="Reset"/>.</summary>
    public const Isa None = (Isa)(-1);

    [ThreadStatic] private static int t_last; // stored as Isa + 1 so that a fresh thread reads None

    /// <summary>The path of the last dispatch on this thread.</summary>
    public static Isa Last => (Isa)(t_last - 1);

    /// <summary>Records <paramref name="isa"/> as the path this call runs on and returns it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Isa Record(Isa isa)
    {
        t_last = (int)isa + 1;
        return isa;
    }

    /// <summary>Forgets the last dispatch, so that a kernel that records nothing shows up as <see cref="None"/>.</summary>
    public static void Reset() => t_last = 0;
}
