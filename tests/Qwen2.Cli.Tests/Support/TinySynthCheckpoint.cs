using Qwen2.Kernels;
using Qwen2.Native;
using Qwen2.Native.Tests;

namespace Qwen2.Cli.Tests;

/// <summary>A tiny synthesized checkpoint shared by the bench tests (written once per class).</summary>
public sealed class TinySynthCheckpoint : IDisposable
{
    private readonly TempDir _dir = Fixtures.TempDir();

    public TinySynthCheckpoint() => SyntheticCheckpoint.Write(Path, SyntheticShape.Tiny, WeightType.BF16);

    public string Path => _dir.Path;

    public void Dispose() => _dir.Dispose();
}
