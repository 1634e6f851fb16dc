using System.Text;
using CsCheck;
using Xunit.Abstractions;

namespace Qwen2.Native.Tests.Fuzz;

/// <summary>What a loader made of one malformed input.</summary>
internal enum Outcome
{
    /// <summary>It loaded (a mutation that left the input valid); the test checked what it loaded.</summary>
    Accepted,
    /// <summary>It threw the documented typed error.</summary>
    Rejected,
}

/// <summary>How many inputs each fuzz target runs; the tests assert they ran exactly this many.</summary>
internal static class FuzzBudget
{
    public const int SafeTensorsDefects = 3000;
    public const int SafeTensorsMutations = 2000;
    public const int SafeTensorsTruncationLayouts = 4; // every prefix of each layout's file: about 1,500 inputs
    public const int ConfigDefects = 1500;
    public const int ConfigMutations = 1500;
    public const int ConfigThroughModelLoad = 150;
    public const int IndexFiles = 250;
    public const int TokenizerJson = 1200;
    public const int TokenizerConfig = 400;

    /// <summary>Inputs of the fixed-count targets (the truncation target adds its per-file prefixes on top).</summary>
    public const int FixedTotal = SafeTensorsDefects + SafeTensorsMutations + ConfigDefects + ConfigMutations + ConfigThroughModelLoad
        + IndexFiles + TokenizerJson + TokenizerConfig;
}

/// <summary>
/// Runs generated inputs through a loader. Inputs come from CsCheck generators driven by one PCG with a fixed seed, so
/// every run (and CI) sees the same inputs in the same order; a failure names the case index and prints the input.
/// </summary>
internal static class Fuzzer
{
    public static (int Rejected, int Accepted) Run<T>(ITestOutputHelper output, string target, Gen<T> gen, int cases, ulong seed,
        Func<T, Outcome> check, Func<T, string> describe)
    {
        var pcg = new PCG(11, seed);
        int rejected = 0, accepted = 0;
        for (int i = 0; i < cases; i++)
        {
            T input = gen.Generate(pcg, null!, out _);
            Outcome outcome;
            try
            {
                outcome = check(input);
            }
            catch (Exception e)
            {
                // Untyped exceptions and failed checks alike: report which input it was.
                throw new Xunit.Sdk.XunitException(
                    $"{target}: case {i} (seed {seed}) failed with {e.GetType().FullName}: {e.Message}\ninput: {Clip(describe(input))}\n{e}");
            }
            if (outcome == Outcome.Rejected) rejected++;
            else accepted++;
        }
        output.WriteLine($"{target}: {cases} inputs, {rejected} rejected with a typed error, {accepted} accepted, 0 crashes");
        Assert.Equal(cases, rejected + accepted);
        return (rejected, accepted);
    }

    /// <summary>
    /// Runs <paramref name="load"/>. A <see cref="CheckpointException"/> is the expected typed error: it must name one of
    /// <paramref name="files"/> (in <see cref="CheckpointException.FilePath"/> and in the message) and a tensor or field,
    /// unless it is about the whole document (malformed JSON, which the message locates, or a root that is not an object).
    /// Any other exception escapes and fails the case.
    /// </summary>
    public static Outcome Load(Action load, params string[] files)
    {
        try
        {
            load();
            return Outcome.Accepted;
        }
        catch (CheckpointException e)
        {
            Assert.Contains(e.FilePath, files);
            Assert.Contains(e.FilePath, e.Message, StringComparison.Ordinal);
            // A syntax error or a root of the wrong type concerns the whole document; the message then gives the JSON position or says so.
            bool wholeDocument = e.InnerException is System.Text.Json.JsonException || e.Message.Contains("a JSON object", StringComparison.Ordinal);
            Assert.True(e.TensorName is not null || e.Field is not null || wholeDocument, $"the error names no tensor or field: {e.Message}");
            if (e.TensorName is not null) Assert.Contains(e.TensorName, e.Message, StringComparison.Ordinal);
            return Outcome.Rejected;
        }
    }

    /// <summary>Like <see cref="Load"/> for an input known to be malformed: loading it must fail.</summary>
    public static Outcome MustReject(Action load, params string[] files)
    {
        var outcome = Load(load, files);
        Assert.True(outcome == Outcome.Rejected, "a malformed input was accepted");
        return outcome;
    }

    public static string Clip(string s) => s.Length <= 4000 ? s : s[..4000] + $"... ({s.Length} chars)";

    /// <summary>Printable bytes: ASCII as is, the rest as \xNN.</summary>
    public static string Show(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length);
        foreach (byte b in bytes) sb.Append(b is >= 0x20 and < 0x7F ? ((char)b).ToString() : $"\\x{b:X2}");
        return sb.ToString();
    }

    /// <summary>One edit of a byte string; positions and lengths are reduced modulo the input's length when applied.</summary>
    internal readonly record struct ByteEdit(int Kind, int Position, byte Value, int Length)
    {
        public override string ToString() => Kind switch
        {
            0 => $"set@{Position}={Value:X2}",
            1 => $"flip@{Position}^{1 << (Value & 7):X2}",
            2 => $"insert@{Position}={Value:X2}",
            3 => $"delete@{Position}+{Length}",
            _ => $"copy@{Position}+{Length}",
        };
    }

    /// <summary>Bytes that matter to JSON and to numbers, then any byte.</summary>
    private static readonly byte[] Interesting = Encoding.ASCII.GetBytes("{}[]\",:-.0123456789eE +\\u/ntf\t\n").Concat(new byte[] { 0, 0x80, 0xC0, 0xED, 0xFF }).ToArray();

    public static readonly Gen<byte> EditByte = Gen.Frequency((3, (IGen<byte>)Gen.OneOf(Interesting)), (1, Gen.Byte));

    public static readonly Gen<ByteEdit> Edit =
        Gen.Select(Gen.Int[0, 4], Gen.Int[0, int.MaxValue], EditByte, Gen.Int[1, 16], (k, p, v, n) => new ByteEdit(k, p, v, n));

    /// <summary>Applies the edits in order to a copy of <paramref name="bytes"/>, starting each position at <paramref name="from"/> when the input reaches it.</summary>
    public static byte[] Apply(byte[] bytes, ByteEdit[] edits, int from = 0)
    {
        var list = new List<byte>(bytes);
        foreach (var e in edits)
        {
            int start = list.Count > from ? from : 0;
            int span = list.Count - start;
            if (span <= 0) { list.Add(e.Value); continue; }
            int p = start + e.Position % span;
            switch (e.Kind)
            {
                case 0: list[p] = e.Value; break;
                case 1: list[p] ^= (byte)(1 << (e.Value & 7)); break;
                case 2: list.Insert(p, e.Value); break;
                case 3: list.RemoveRange(p, Math.Min(e.Length, list.Count - p)); break;
                default: list.InsertRange(p, list.GetRange(p, Math.Min(e.Length, list.Count - p))); break;
            }
        }
        return list.ToArray();
    }
}
