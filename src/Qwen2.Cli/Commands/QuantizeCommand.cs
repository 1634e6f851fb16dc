using Qwen2.Native.Gguf;

namespace Qwen2.Cli;

/// <summary>
/// <c>qwen2 quantize</c>: writes any model the engine loads (a checkpoint directory or a GGUF file) as a quantized GGUF v3 file with llama.cpp's per-tensor types for the
/// mix and its reference quantizers, loadable by llama.cpp and by the engine.
/// </summary>
internal static class QuantizeCommand
{
    private const int BarWidth = 30;

    internal static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var model = CommonOptions.Model();
        var output = ExportGgufCommand.Output();
        var type = new Option<string>("--type")
        {
            Description = "llama.cpp's quantization mix: q8_0, q4_0, q4_k_m, q5_k_m or q6_k (also q4_1, q5_0, q5_1, q4_k_s, q5_k_s).",
            HelpName = "q8_0|q4_0|q4_k_m|q5_k_m|q6_k",
            Required = true,
        };
        var allowRequantize = new Option<bool>("--allow-requantize")
        {
            Description = "Let tensors already quantized to another type be dequantized and quantized again (as llama.cpp's quantize; both rounding errors add up).",
        };
        var cmd = new Command("quantize",
            "Write the model (a checkpoint or a GGUF file) as a quantized GGUF v3 file (architecture qwen2) with llama.cpp's per-tensor types and quantizers.")
        {
            model, output, type, allowRequantize,
        };
        cmd.SetAction(p => Guard.Run(stderr, () =>
            ExportGgufCommand.Export(p, model, output, ParseType(p.GetValue(type)!), new ProgressBar(stderr), stdout, p.GetValue(allowRequantize))));
        return cmd;
    }

    /// <summary>The mix --type names; a usage error naming the option otherwise.</summary>
    internal static GgufFileType ParseType(string text) => text.ToLowerInvariant() switch
    {
        "q8_0" => GgufFileType.Q8_0,
        "q4_0" => GgufFileType.Q4_0,
        "q4_1" => GgufFileType.Q4_1,
        "q5_0" => GgufFileType.Q5_0,
        "q5_1" => GgufFileType.Q5_1,
        "q4_k_s" => GgufFileType.Q4_K_S,
        "q4_k_m" or "q4_k" => GgufFileType.Q4_K_M,
        "q5_k_s" => GgufFileType.Q5_K_S,
        "q5_k_m" or "q5_k" => GgufFileType.Q5_K_M,
        "q6_k" => GgufFileType.Q6_K,
        _ => throw new UsageException($"--type: unknown type \"{text}\"; expected q8_0, q4_0, q4_k_m, q5_k_m or q6_k (or q4_1, q5_0, q5_1, q4_k_s, q5_k_s)"),
    };

    /// <summary>
    /// A bar on stderr, redrawn in place with a carriage return whenever a whole percent passes (a line per 10 % when
    /// stderr is redirected, so logs stay readable); reports on the writing thread, in order.
    /// </summary>
    private sealed class ProgressBar(TextWriter stderr) : IProgress<GgufExportProgress>
    {
        private readonly bool _inPlace = ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected;
        private int _last = -1;

        public void Report(GgufExportProgress e)
        {
            int percent = e.TotalBytes == 0 ? 100 : (int)(e.BytesWritten * 100 / e.TotalBytes);
            if (percent == _last || (!_inPlace && percent / 10 == _last / 10 && percent != 100)) return;
            _last = percent;
            int filled = percent * BarWidth / 100;
            string bar = string.Create(CultureInfo.InvariantCulture, $"[{new string('#', filled)}{new string('.', BarWidth - filled)}] {percent,3}% {e.Tensor}");
            if (_inPlace) stderr.Write("\r" + bar.PadRight(BarWidth + 48) + (percent == 100 ? Environment.NewLine : ""));
            else stderr.WriteLine(bar);
        }
    }
}
