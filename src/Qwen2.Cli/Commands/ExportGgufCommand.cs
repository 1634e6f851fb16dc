using Qwen2.Native.Gguf;

namespace Qwen2.Cli;

/// <summary><c>qwen2 export-gguf</c>: writes a checkpoint or a GGUF file as a GGUF v3 file that llama.cpp loads as architecture qwen2.</summary>
internal static class ExportGgufCommand
{
    internal static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var model = CommonOptions.Model();
        var output = Output();
        var type = new Option<string>("--type")
        {
            Description = "Element type of the matrices; norms and biases are always f32.",
            HelpName = "f16|f32",
            DefaultValueFactory = _ => "f16",
        };
        var cmd = new Command("export-gguf",
            "Write the model (a checkpoint or a GGUF file, quantized ones dequantized) with its config and tokenizer as a GGUF v3 file for llama.cpp (architecture qwen2).")
        {
            model, output, type,
        };
        cmd.SetAction(p => Guard.Run(stderr, () =>
        {
            var fileType = ParseType(p.GetValue(type)!);
            int lastPercent = -1;
            // Progress on stderr, a line every 10 %, so a multi-gigabyte export shows it is alive.
            var progress = new SynchronousProgress(e =>
            {
                int percent = e.TotalBytes == 0 ? 100 : (int)(e.BytesWritten * 100 / e.TotalBytes);
                if (percent / 10 == lastPercent / 10) return;
                lastPercent = percent;
                stderr.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{percent,3}% {e.Tensor}"));
            });
            return Export(p, model, output, fileType, progress, stdout);
        }));
        return cmd;
    }

    /// <summary>--out (-o): the GGUF file a writing verb produces.</summary>
    internal static Option<string> Output() =>
        new("--out", "-o") { Description = "The GGUF file to write (replaced once the new one is complete).", Required = true };

    /// <summary>Checks --out, writes the file from --model (a checkpoint or a GGUF file), and reports what was written on stdout.</summary>
    internal static int Export(ParseResult p, Option<string?> model, Option<string> output, GgufFileType fileType, IProgress<GgufExportProgress> progress, TextWriter stdout,
        bool allowRequantize = false)
    {
        string path = p.GetValue(output)!;
        if (path.Length == 0) throw new UsageException("--out: the file name is empty");
        if (Directory.Exists(path)) throw new UsageException($"--out: '{path}' is a directory; give a file name");
        string dir = CommonOptions.ResolveModel(p.GetValue(model));
        var r = GgufExporter.Export(dir, path, fileType, allowRequantize, progress);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote {Path.GetFullPath(r.Path)}: {r.Type}, {r.TensorCount} tensors, {r.TokenCount} tokens, {r.FileBytes:N0} bytes, {r.Elapsed.TotalSeconds:F1} s"));
        return 0;
    }

    internal static GgufFileType ParseType(string text) => text.ToLowerInvariant() switch
    {
        "f16" or "fp16" or "float16" => GgufFileType.F16,
        "f32" or "fp32" or "float32" => GgufFileType.F32,
        _ => throw new UsageException($"--type: unknown type \"{text}\"; expected f16 or f32"),
    };

    /// <summary>Reports on the exporting thread (Progress&lt;T&gt; would post to the thread pool and reorder lines).</summary>
    private sealed class SynchronousProgress(Action<GgufExportProgress> report) : IProgress<GgufExportProgress>
    {
        public void Report(GgufExportProgress value) => report(value);
    }
}
