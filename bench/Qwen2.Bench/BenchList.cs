namespace Qwen2.Bench;

/// <summary>Parameter lists a run can narrow through an environment variable (BenchmarkDotNet has no command-line override for them).</summary>
internal static class BenchList
{
    /// <summary>The comma-separated values of <paramref name="variable"/>, or <paramref name="defaults"/> when it is unset or empty.</summary>
    public static IEnumerable<string> FromEnvironment(string variable, string[] defaults) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } list
            ? list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            : defaults;
}
