namespace Qwen2.Native;

/// <summary>Names of llama.cpp's <c>general.file_type</c> values (<c>enum llama_ftype</c>: the mix a file was quantized to).</summary>
internal static class GgufFileTypes
{
    private static readonly Dictionary<long, string> Names = new()
    {
        [0] = "F32", [1] = "F16", [2] = "Q4_0", [3] = "Q4_1", [7] = "Q8_0", [8] = "Q5_0", [9] = "Q5_1",
        [10] = "Q2_K", [11] = "Q3_K_S", [12] = "Q3_K_M", [13] = "Q3_K_L", [14] = "Q4_K_S", [15] = "Q4_K_M",
        [16] = "Q5_K_S", [17] = "Q5_K_M", [18] = "Q6_K", [32] = "BF16",
    };

    /// <summary>"GGUF Q4_K_M" and the like, for the config's dtype line; "GGUF" when the file does not say.</summary>
    public static string Describe(GgufMetadata m) =>
        m.Integer("general.file_type") is { } t ? "GGUF " + (Names.TryGetValue(t, out var n) ? n : $"file_type {t}") : "GGUF";
}
