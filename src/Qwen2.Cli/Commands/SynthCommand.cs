using System.IO.Compression;
using Qwen2.Kernels;

namespace Qwen2.Cli;

/// <summary><c>qwen2 synth</c>: writes a random-weight checkpoint with real Qwen2 shapes and the Qwen2.5 tokenizer.</summary>
internal static class SynthCommand
{
    /// <summary>Manifest names of the tokenizer assets (LogicalName in Qwen2.Cli.csproj).</summary>
    internal const string TokenizerJsonResource = "Qwen2.Cli.Assets.qwen2.5.tokenizer.json.gz";
    internal const string TokenizerConfigResource = "Qwen2.Cli.Assets.qwen2.5.tokenizer_config.json";

    private static readonly string ShapeNames = string.Join("|", SyntheticShape.All.Select(s => s.Name));

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var shape = new Option<string>("--shape")
        {
            Description = $"Architecture: {string.Join(", ", SyntheticShape.All.Select(Describe))}.",
            HelpName = ShapeNames,
            Required = true,
        };
        var dtype = new Option<string>("--dtype")
        {
            Description = "Element type of every tensor.",
            HelpName = "bf16|f16|f32",
            DefaultValueFactory = _ => "bf16",
        };
        var output = new Option<string>("--out", "-o") { Description = "Directory to write (created if missing; must be empty unless --force).", Required = true };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the random weights: the same seed, shape and dtype give byte-identical files.", DefaultValueFactory = _ => 0 };
        var force = new Option<bool>("--force") { Description = "Write into a non-empty directory, replacing the checkpoint files there." };
        var cmd = new Command("synth",
            "Write a random-weight checkpoint (config.json, generation_config.json, model.safetensors, Qwen2.5 tokenizer) " +
            "with the real shapes of a Qwen2 model, for load, memory and speed measurements. Its outputs mean nothing.")
        {
            shape, dtype, output, seed, force,
        };
        cmd.SetAction(p => Guard.Run(stderr, () =>
        {
            string shapeName = p.GetValue(shape)!;
            if (!SyntheticShape.TryGet(shapeName, out var s))
                throw new UsageException($"--shape: unknown shape \"{shapeName}\"; expected one of {string.Join(", ", SyntheticShape.All.Select(x => x.Name))}");
            var type = ParseDtype(p.GetValue(dtype)!);
            string dir = p.GetValue(output)!;
            if (dir.Length == 0) throw new UsageException("--out: the directory name is empty");
            if (File.Exists(dir)) throw new UsageException($"--out: '{dir}' is a file, not a directory");
            if (Directory.Exists(dir) && !p.GetValue(force) && Directory.EnumerateFileSystemEntries(dir).Any())
                throw new UsageException($"--out: '{dir}' is not empty; pass --force to write the checkpoint into it anyway");

            var result = SyntheticCheckpoint.Write(dir, s, type, p.GetValue(seed), overwrite: p.GetValue(force));
            WriteTokenizer(dir);
            if (s.Embedding) SyntheticCheckpoint.AddEmbeddingTemplate(Path.Combine(dir, "tokenizer.json")); // appends <|endoftext|>, as Qwen3-Embedding's
            stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"wrote {Path.GetFullPath(dir)}: {s.Name} {TensorSpec.HeaderName(type)}, {result.ParameterCount:N0} parameters, {result.WeightFileBytes:N0} bytes, {result.Elapsed.TotalSeconds:F1} s"));
            return 0;
        }));
        return cmd;
    }

    private static string Describe(SyntheticShape s) => string.Create(CultureInfo.InvariantCulture,
        $"{s.Name} ({s.ParameterCount / 1e6:F0}M params, {s.NumHiddenLayers} layers, hidden {s.HiddenSize})");

    internal static WeightType ParseDtype(string text) => text.ToLowerInvariant() switch
    {
        "bf16" or "bfloat16" => WeightType.BF16,
        "f16" or "fp16" or "float16" => WeightType.F16,
        "f32" or "fp32" or "float32" => WeightType.F32,
        _ => throw new UsageException($"--dtype: unknown dtype \"{text}\"; expected bf16, f16 or f32"),
    };

    /// <summary>Writes tokenizer.json (decompressed) and tokenizer_config.json from the embedded Qwen2.5 assets.</summary>
    internal static void WriteTokenizer(string directory)
    {
        using (var gz = new GZipStream(OpenResource(TokenizerJsonResource), CompressionMode.Decompress))
        using (var file = File.Create(Path.Combine(directory, "tokenizer.json")))
            gz.CopyTo(file);
        using (var config = OpenResource(TokenizerConfigResource))
        using (var file = File.Create(Path.Combine(directory, "tokenizer_config.json")))
            config.CopyTo(file);
    }

    private static Stream OpenResource(string name) =>
        typeof(SynthCommand).Assembly.GetManifestResourceStream(name)
        ?? throw new InvalidOperationException($"embedded resource '{name}' is missing from {typeof(SynthCommand).Assembly.GetName().Name}; the build did not embed the tokenizer assets");
}
