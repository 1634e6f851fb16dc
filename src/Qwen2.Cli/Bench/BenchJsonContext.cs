using System.Text.Json.Serialization;

namespace Qwen2.Cli;

/// <summary>Source-generated serialization of <see cref="BenchReport"/> (no reflection, trimming-safe).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(BenchReport))]
[JsonSerializable(typeof(BatchReport))]
internal sealed partial class BenchJsonContext : JsonSerializerContext;
