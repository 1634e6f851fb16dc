using Qwen2.Kernels;
using Qwen2.Native;

namespace Qwen2.Bench;

/// <summary>
/// The checkpoint the model benchmarks load: <c>QWEN2_MODEL</c> (a directory or cached hub id) when set; else
/// <c>QWEN2_BENCH_SHAPE</c>: <c>tiny</c> is the repository's tiny-bf16 test fixture (nothing is written), any other
/// synthetic shape name (default <c>qwen2-0.5b</c>) is the BF16 checkpoint <c>qwen2 demo</c> keeps under
/// <c>~/.cache/qwen2managed</c>, synthesized there on first use.
/// </summary>
internal static class BenchCheckpoint
{
    /// <summary>Environment variable that picks the synthetic shape.</summary>
    public const string ShapeVariable = "QWEN2_BENCH_SHAPE";

    /// <summary>The checkpoint directory to load.</summary>
    public static string Resolve()
    {
        if (Environment.GetEnvironmentVariable(ModelLocator.ModelVariable) is { Length: > 0 } model) return ModelLocator.Resolve(model);
        string shape = Environment.GetEnvironmentVariable(ShapeVariable) is { Length: > 0 } s ? s : SyntheticShape.Qwen2_0_5B.Name;
        if (string.Equals(shape, "tiny", StringComparison.OrdinalIgnoreCase)) return TinyFixture();
        return SyntheticCheckpointCache.GetOrCreate(SyntheticShape.Get(shape), WeightType.BF16, log: Console.Out);
    }

    /// <summary>Finds tests/fixtures/models/tiny-bf16 above the running binary.</summary>
    public static string TinyFixture()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "tests", "fixtures", "models", "tiny-bf16");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException($"tests/fixtures/models/tiny-bf16 was not found above {AppContext.BaseDirectory}; set {ModelLocator.ModelVariable} to a checkpoint directory");
    }
}
