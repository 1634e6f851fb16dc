namespace Qwen2.Cli;

/// <summary>Options and checks shared by the verbs.</summary>
internal static class CommonOptions
{
    /// <summary>--model (-m): the checkpoint directory, a .gguf file, or a cached hub id (repo:tag for GGUF); unset falls back to $QWEN2_MODEL.</summary>
    internal static Option<string?> Model() => new("--model", "-m")
    {
        Description = $"Checkpoint directory, a .gguf file (or a directory holding one), or a Hugging Face hub id found in the local Hugging Face cache (e.g. {ModelLocator.SuggestedHubId}, or Qwen/Qwen2.5-0.5B-Instruct-GGUF:q4_k_m for a GGUF repo). Default: ${ModelLocator.ModelVariable}.",
    };

    /// <summary>--quantize: quantize a float checkpoint's matrices at load (<see cref="ModelOptions.Quantize"/>).</summary>
    internal static Option<string?> Quantize() => new("--quantize")
    {
        Description = "Quantize the matrices at load, in memory, with llama.cpp's reference quantizers: q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k or q6_k " +
            "(norms and biases stay f32; the lm_head gets q6_k or q8_0, as in llama.cpp's files). Default: the weights as stored.",
        HelpName = "q8_0|q4_0|q4_1|q5_0|q5_1|q4_k|q5_k|q6_k",
    };

    /// <summary>The type --quantize names, or null when it is not given; a usage error for any other text.</summary>
    internal static Qwen2.Kernels.WeightType? ParseQuantize(string? text) => text?.ToLowerInvariant() switch
    {
        null => null,
        "q8_0" => Qwen2.Kernels.WeightType.Q8_0,
        "q4_0" => Qwen2.Kernels.WeightType.Q4_0,
        "q4_1" => Qwen2.Kernels.WeightType.Q4_1,
        "q5_0" => Qwen2.Kernels.WeightType.Q5_0,
        "q5_1" => Qwen2.Kernels.WeightType.Q5_1,
        "q4_k" => Qwen2.Kernels.WeightType.Q4_K,
        "q5_k" => Qwen2.Kernels.WeightType.Q5_K,
        "q6_k" => Qwen2.Kernels.WeightType.Q6_K,
        _ => throw new UsageException($"--quantize: unknown type \"{text}\"; expected q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k or q6_k"),
    };

    /// <summary><paramref name="value"/> when it is at least 1, else a usage error naming <paramref name="option"/>.</summary>
    internal static int AtLeast1(int value, string option) =>
        value >= 1 ? value : throw new UsageException($"{option} must be at least 1, got {value}");

    /// <summary>As <see cref="AtLeast1(int, string)"/>, for an option that may be left out.</summary>
    internal static int? AtLeast1(int? value, string option) => value is int v ? AtLeast1(v, option) : null;

    /// <summary>The checkpoint directory or .gguf file --model names (a directory, a file, a cached hub id, or $QWEN2_MODEL).</summary>
    internal static string ResolveModel(string? model) => ModelLocator.Resolve(model);
}
