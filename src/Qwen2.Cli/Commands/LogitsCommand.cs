using System.Text;

namespace Qwen2.Cli;

/// <summary><c>qwen2 logits</c>: the logits of every input position as JSON, with or without the KV cache.</summary>
internal static class LogitsCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var model = CommonOptions.Model();
        var tokens = new Option<string>("--tokens") { Description = "Comma-separated token ids, e.g. 1,17,42.", Required = true };
        var incremental = new Option<bool>("--incremental") { Description = "Feed the first token alone, then each later one through the KV cache." };
        var threads = new Option<int?>("--threads") { Description = "Threads (default: processor count). Logits are bit-identical for any count." };
        var quantize = CommonOptions.Quantize();
        var cmd = new Command("logits", "Print the logits of every input position as JSON: {\"logits\": [[...], ...]}.") { model, tokens, incremental, threads, quantize };
        cmd.SetAction(p => Guard.Run(stderr, () =>
        {
            int[] ids = TokenIds.Parse(p.GetValue(tokens)!);
            int? t = CommonOptions.AtLeast1(p.GetValue(threads), "--threads");
            var q = CommonOptions.ParseQuantize(p.GetValue(quantize));
            using var m = Qwen2Model.FromPretrained(p.GetValue(model), new ModelOptions { Threads = t, Quantize = q });
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

    /// <summary>Writes {"logits": [[...], ...]} with each float in its shortest round-trip form.</summary>
    internal static void WriteLogitsJson(IReadOnlyList<float[]> rows, TextWriter w) => WriteRowsJson("logits", rows, w);

    /// <summary>Writes {<paramref name="leading"/>"NAME": [[...], ...]} with each float in its shortest round-trip form.</summary>
    internal static void WriteRowsJson(string name, IReadOnlyList<float[]> rows, TextWriter w, string leading = "")
    {
        var sb = new StringBuilder(rows.Count * (rows.Count > 0 ? rows[0].Length : 0) * 12 + 16 + leading.Length);
        Span<char> buf = stackalloc char[32];
        sb.Append('{').Append(leading).Append('"').Append(name).Append("\": [");
        for (int r = 0; r < rows.Count; r++)
        {
            sb.Append(r == 0 ? "[" : ", [");
            var row = rows[r];
            for (int i = 0; i < row.Length; i++)
            {
                if (!float.IsFinite(row[i])) throw new InvalidOperationException($"{name} value {i} of row {r} is {row[i]}, which JSON cannot hold");
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
}
