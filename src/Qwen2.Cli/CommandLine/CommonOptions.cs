namespace Qwen2.Cli;

/// <summary>Options and checks shared by the verbs.</summary>
internal static class CommonOptions
{
    /// <summary>--model (-m): the checkpoint directory, a .gguf file, or a cached hub id (repo:tag for GGUF); unset falls back to $QWEN2_MODEL.</summary>
    internal static Option<string?> Model() => new("--model", "-m")
    {
        Description = $"Checkpoint directory, a .gguf file (or a directory holding one), or a Hugging Face hub id found in the local Hugging Face cache (e.g. {ModelLocator.SuggestedHubId}, or Qwen/Qwen2.5-0.5B-Instruct-GGUF:q4_k_m for a GGUF repo). Default: ${ModelLocator.ModelVariable}.",
    };

    /// <summary><paramref name="value"/> when it is at least 1, else a usage error naming <paramref name="option"/>.</summary>
    internal static int AtLeast1(int value, string option) =>
        value >= 1 ? value : throw new UsageException($"{option} must be at least 1, got {value}");

    /// <summary>As <see cref="AtLeast1(int, string)"/>, for an option that may be left out.</summary>
    internal static int? AtLeast1(int? value, string option) => value is int v ? AtLeast1(v, option) : null;

    /// <summary>The checkpoint directory or .gguf file --model names (a directory, a file, a cached hub id, or $QWEN2_MODEL).</summary>
    internal static string ResolveModel(string? model) => ModelLocator.Resolve(model);
}
