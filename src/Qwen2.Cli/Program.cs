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
    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs the command line with the given writers (tests call this).</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("qwen2: run Qwen2 / Qwen2.5 checkpoints in pure managed .NET.");
        root.Subcommands.Add(InfoCommand(stdout, stderr));
        root.Subcommands.Add(LogitsCommand(stdout, stderr));
        var parsed = root.Parse(args);
        return parsed.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
    }

    internal static Option<string> ModelOption() => new("--model", "-m")
    {
        Description = "Checkpoint directory (config.json + model.safetensors or sharded files).",
        Required = true,
    };

    private static Command InfoCommand(TextWriter stdout, TextWriter stderr)
    {
        var model = ModelOption();
        var cmd = new Command("info", "Print the config and a summary of the tensors.") { model };
        cmd.SetAction(p => Guard(stderr, () =>
        {
            using var m = Qwen2Model.Load(p.GetValue(model)!, new ModelOptions { Threads = 1 });
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
            int? t = p.GetValue(threads);
            if (t is < 1) throw new UsageException($"--threads must be at least 1, got {t}");
            using var m = Qwen2Model.Load(p.GetValue(model)!, new ModelOptions { Threads = t });
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
        catch (Exception e) when (e is CheckpointException or UsageException or ArgumentException or InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"error: {e.Message}");
            return UsageError;
        }
    }
}

/// <summary>A bad command-line argument.</summary>
internal sealed class UsageException(string message) : Exception(message);
