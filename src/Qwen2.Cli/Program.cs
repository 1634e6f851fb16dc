using System.CommandLine;
using System.Globalization;
using System.Text;
using Qwen2.Native;

namespace Qwen2.Cli;

/// <summary>The <c>qwen2</c> command.</summary>
public static class Program
{
    /// <summary>Exit code for a bad argument or an unusable checkpoint.</summary>
    public const int UsageError = 2;

    /// <summary>Entry point.</summary>
    public static int Main(string[] args)
    {
        Console.OutputEncoding = Encoding.UTF8;
        Console.InputEncoding = Encoding.UTF8;
        return Run(args, Console.In, Console.Out, Console.Error);
    }

    /// <summary>Runs the command line with the given writers and no input (tests call this).</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr) => Run(args, TextReader.Null, stdout, stderr);

    /// <summary>Runs the command line with the given reader (for <c>chat</c>) and writers.</summary>
    public static int Run(string[] args, TextReader stdin, TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("qwen2: run Qwen2 / Qwen2.5 checkpoints in pure managed .NET.");
        root.Subcommands.Add(DemoCommand.Create(stdout, stderr));
        root.Subcommands.Add(BenchCommand.Create(stdout, stderr));
        root.Subcommands.Add(GenerateCommand.Generate(stdout, stderr));
        root.Subcommands.Add(GenerateCommand.Chat(stdin, stdout, stderr));
        root.Subcommands.Add(GenerateCommand.Tokenize(stdout, stderr));
        root.Subcommands.Add(SynthCommand.Create(stdout, stderr));
        root.Subcommands.Add(ExportGgufCommand.Create(stdout, stderr));
        root.Subcommands.Add(InfoCommand(stdout, stderr));
        root.Subcommands.Add(LogitsCommand(stdout, stderr));
        root.Subcommands.Add(CpuCommand(stdout));
        var parsed = root.Parse(args);
        return parsed.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
    }

    internal static Option<string?> ModelOption() => new("--model", "-m")
    {
        Description = $"Checkpoint directory, or a Hugging Face hub id found in the local Hugging Face cache (e.g. {ModelLocator.SuggestedHubId}). Default: ${ModelLocator.ModelVariable}.",
    };

    /// <summary><paramref name="value"/> when it is at least 1, else a usage error naming <paramref name="option"/>.</summary>
    internal static int AtLeast1(int value, string option) =>
        value >= 1 ? value : throw new UsageException($"{option} must be at least 1, got {value}");

    /// <summary>As <see cref="AtLeast1(int, string)"/>, for an option that may be left out.</summary>
    internal static int? AtLeast1(int? value, string option) => value is int v ? AtLeast1(v, option) : null;

    /// <summary>The checkpoint directory --model names (a directory, a cached hub id, or $QWEN2_MODEL).</summary>
    internal static string ResolveModel(string? model) => ModelLocator.Resolve(model);

    private static Command InfoCommand(TextWriter stdout, TextWriter stderr)
    {
        var model = ModelOption();
        var cmd = new Command("info", "Print the config and a summary of the tensors.") { model };
        cmd.SetAction(p => Guard(stderr, () =>
        {
            using var m = Qwen2Model.Load(ResolveModel(p.GetValue(model)), new ModelOptions { Threads = 1 });
            Info.Write(m, stdout);
            return 0;
        }));
        return cmd;
    }

    private static Command LogitsCommand(TextWriter stdout, TextWriter stderr)
    {
        var model = ModelOption();
        var tokens = new Option<string>("--tokens") { Description = "Comma-separated token ids, e.g. 1,17,42.", Required = true };
        var incremental = new Option<bool>("--incremental") { Description = "Feed the first token alone, then each later one through the KV cache." };
        var threads = new Option<int?>("--threads") { Description = "Threads (default: processor count). Logits are bit-identical for any count." };
        var cmd = new Command("logits", "Print the logits of every input position as JSON: {\"logits\": [[...], ...]}.") { model, tokens, incremental, threads };
        cmd.SetAction(p => Guard(stderr, () =>
        {
            int[] ids = ParseTokens(p.GetValue(tokens)!);
            int? t = AtLeast1(p.GetValue(threads), "--threads");
            using var m = Qwen2Model.Load(ResolveModel(p.GetValue(model)), new ModelOptions { Threads = t });
            var rows = new List<float[]>();
            if (p.GetValue(incremental))
            {
                var cache = m.CreateCache(ids.Length);
                for (int i = 0; i < ids.Length; i++)
                    rows.Add(m.Forward(ids.AsSpan(i, 1), cache, useCache: true, LogitsSelection.Last).Logits.Last.ToArray());
            }
            else
            {
                var logits = m.Forward(ids);
                for (int i = 0; i < logits.Rows; i++) rows.Add(logits[i].ToArray());
            }
            WriteLogitsJson(rows, stdout);
            return 0;
        }));
        return cmd;
    }

    /// <summary>
    /// <c>qwen2 cpu</c>: the kernel path and the instruction sets this process sees. A native AOT binary fixes some of
    /// these at compile time (its instruction-set baseline), so this is how to check that it still finds AVX-512.
    /// </summary>
    private static Command CpuCommand(TextWriter stdout)
    {
        var cmd = new Command("cpu", "Print the kernel path this process takes, the instruction sets it sees, and whether it runs as native AOT.");
        cmd.SetAction(_ =>
        {
            stdout.WriteLine($"kernels         {Qwen2.Kernels.IsaSupport.Best}");
            stdout.WriteLine($"Vector512       {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}");
            stdout.WriteLine($"Vector256       {System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated}");
            stdout.WriteLine($"Avx512F         {System.Runtime.Intrinsics.X86.Avx512F.IsSupported}");
            stdout.WriteLine($"Avx512BW        {System.Runtime.Intrinsics.X86.Avx512BW.IsSupported}");
            stdout.WriteLine($"Avx2            {System.Runtime.Intrinsics.X86.Avx2.IsSupported}");
            stdout.WriteLine($"Fma             {System.Runtime.Intrinsics.X86.Fma.IsSupported}");
            // A native AOT process compiles no method at run time; RuntimeFeature.IsDynamicCodeSupported cannot tell,
            // since PublishAot switches it off for JIT runs of this project too.
            stdout.WriteLine($"runtime         {(System.Runtime.JitInfo.GetCompiledMethodCount() > 0 ? "JIT" : "native AOT")}, {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}");
            // The tokenizer needs NFC; invariant globalization would make Normalize a no-op for non-ASCII text.
            stdout.WriteLine($"NFC             {("e\u0301".Normalize(NormalizationForm.FormC) == "\u00e9" ? "works" : "unavailable (invariant globalization?)")}");
            stdout.WriteLine($"processors      {Environment.ProcessorCount}");
            return 0;
        });
        return cmd;
    }

    internal static int[] ParseTokens(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out ids[i]))
                throw new UsageException($"--tokens: \"{parts[i]}\" (item {i + 1}) is not an integer token id");
        return ids;
    }

    /// <summary>Writes {"logits": [[...], ...]} with each float in its shortest round-trip form.</summary>
    internal static void WriteLogitsJson(IReadOnlyList<float[]> rows, TextWriter w)
    {
        var sb = new StringBuilder(rows.Count * (rows.Count > 0 ? rows[0].Length : 0) * 12 + 16);
        Span<char> buf = stackalloc char[32];
        sb.Append("{\"logits\": [");
        for (int r = 0; r < rows.Count; r++)
        {
            sb.Append(r == 0 ? "[" : ", [");
            var row = rows[r];
            for (int i = 0; i < row.Length; i++)
            {
                if (!float.IsFinite(row[i])) throw new InvalidOperationException($"logit {i} of row {r} is {row[i]}, which JSON cannot hold");
                if (i > 0) sb.Append(", ");
                row[i].TryFormat(buf, out int len, "R", CultureInfo.InvariantCulture);
                sb.Append(buf[..len]);
            }
            sb.Append(']');
        }
        sb.Append("]}");
        w.WriteLine(sb.ToString());
        w.Flush();
    }

    /// <summary>Turns expected failures into one clear line on stderr and a non-zero exit code, with no stack trace.</summary>
    internal static int Guard(TextWriter stderr, Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (e is CheckpointException or UsageException or ArgumentException or InvalidOperationException or NotSupportedException or IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"error: {OneLine(e.Message)}");
            return UsageError;
        }
    }

    /// <summary>
    /// The message with control characters written as \uXXXX: a tensor name or JSON string from a file may hold a
    /// newline or a terminal escape, which must neither split the one error line nor reach the terminal.
    /// </summary>
    internal static string OneLine(string message)
    {
        if (!message.Any(char.IsControl)) return message;
        var sb = new StringBuilder(message.Length + 16);
        foreach (char ch in message)
        {
            if (char.IsControl(ch)) sb.Append($"\\u{(int)ch:X4}");
            else sb.Append(ch);
        }
        return sb.ToString();
    }
}

/// <summary>A bad command-line argument.</summary>
internal sealed class UsageException(string message) : Exception(message);
