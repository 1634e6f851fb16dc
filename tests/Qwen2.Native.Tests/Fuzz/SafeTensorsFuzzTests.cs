using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using CsCheck;
using Xunit.Abstractions;

namespace Qwen2.Native.Tests.Fuzz;

/// <summary>
/// Malformed safetensors files through <see cref="SafeTensorsFile.Open"/>: valid layouts with injected defects (each
/// must be refused), random byte edits of valid files (refused, or accepted and then consistent), and every truncation.
/// Never an untyped exception, never a huge allocation, never a mapping read out of bounds.
/// </summary>
public sealed class SafeTensorsFuzzTests(ITestOutputHelper output)
{
    private static readonly (string Name, int Size)[] DTypes =
        [("F32", 4), ("BF16", 2), ("F16", 2), ("I64", 8), ("U8", 1), ("I32", 4), ("F64", 8), ("BOOL", 1), ("F8_E4M3", 1), ("U16", 2)];

    /// <summary>Every dtype the loader knows, with its size (an edited file may use any of them).</summary>
    private static readonly Dictionary<string, int> AllSizes = new()
    {
        ["BOOL"] = 1, ["U8"] = 1, ["I8"] = 1, ["F8_E4M3"] = 1, ["F8_E5M2"] = 1, ["I16"] = 2, ["U16"] = 2, ["F16"] = 2,
        ["BF16"] = 2, ["I32"] = 4, ["U32"] = 4, ["F32"] = 4, ["I64"] = 8, ["U64"] = 8, ["F64"] = 8,
    };

    private static int SizeOf(string dtype) => AllSizes[dtype];

    /// <summary>One tensor entry; the *Json fields, when set, replace the valid JSON of that field.</summary>
    private sealed class Entry
    {
        public required string Name;
        public required string DType;
        public required long[] Shape;
        public long Begin, End;
        public string? NameJson, DTypeJson, ShapeJson, OffsetsJson, BodyJson, Extra;
        public string? Missing;
        public bool Touched;
        public long Bytes => End - Begin;

        public string Json()
        {
            var body = BodyJson;
            if (body is null)
            {
                var fields = new List<string>();
                if (Missing != "dtype") fields.Add("\"dtype\": " + (DTypeJson ?? Quote(DType)));
                if (Missing != "shape") fields.Add("\"shape\": " + (ShapeJson ?? "[" + string.Join(", ", Shape) + "]"));
                if (Missing != "data_offsets") fields.Add("\"data_offsets\": " + (OffsetsJson ?? $"[{Begin}, {End}]"));
                if (Extra is not null) fields.Add(Extra);
                body = "{" + string.Join(", ", fields) + "}";
            }
            return (NameJson ?? Quote(Name)) + ": " + body;
        }
    }

    private static string Quote(string s) => System.Text.Json.JsonSerializer.Serialize(s);

    /// <summary>A file under construction: entries, metadata, data length, and file-level defects.</summary>
    private sealed class StCase
    {
        public List<Entry> Entries = new();
        public string? Metadata = "{\"format\": \"pt\"}";
        public long DataLength;
        public int Trailing, Cut;
        public string? HeaderText;                 // replaces the whole header
        public Func<string, string>? TextEdit;     // applied to the header text
        public byte[]? BadUtf8;                    // replaces the marker "@@" in the header bytes
        public Func<ulong, long, ulong>? HeaderLength; // (true length, file length) -> declared length
        public List<string> Defects = new();

        public string Text()
        {
            if (HeaderText is not null) return HeaderText;
            var parts = new List<string>();
            if (Metadata is not null) parts.Add("\"__metadata__\": " + Metadata);
            parts.AddRange(Entries.Select(e => e.Json()));
            var text = "{" + string.Join(", ", parts) + "}";
            return TextEdit is null ? text : TextEdit(text);
        }

        public byte[] Build()
        {
            var header = Encoding.UTF8.GetBytes(Text()).ToList();
            if (BadUtf8 is not null)
            {
                // the marker is gone when another defect replaced or cut the header; that defect then suffices
                int at = IndexOf(header, "@@"u8);
                if (at >= 0)
                {
                    header.RemoveRange(at, 2);
                    header.InsertRange(at, BadUtf8);
                }
            }
            while (header.Count % 8 != 0) header.Add((byte)' ');
            long data = Math.Max(0, DataLength + Trailing - Cut);
            var file = new byte[8 + header.Count + data];
            header.CopyTo(file, 8);
            // Data bytes that are not JSON whitespace: a header length that runs into them makes invalid JSON.
            file.AsSpan(8 + header.Count).Fill(0xAB);
            ulong length = (ulong)header.Count;
            if (HeaderLength is not null) length = HeaderLength(length, file.Length);
            BinaryPrimitives.WriteUInt64LittleEndian(file, length);
            return file;
        }

        public override string ToString() => $"defects [{string.Join("; ", Defects)}], data {DataLength}+{Trailing}-{Cut}, header {Text()}";

        private static int IndexOf(List<byte> list, ReadOnlySpan<byte> marker)
        {
            for (int i = 0; i + marker.Length <= list.Count; i++)
                if (list[i] == marker[0] && list[i + 1] == marker[1]) return i;
            return -1;
        }
    }

    private static readonly Gen<(string DType, long[] Shape)> GoodTensor =
        Gen.Select(Gen.OneOf(DTypes.Select(d => d.Name).ToArray()), Gen.Int[0, 5].Select(x => (long)x).Array[0, 3], (d, s) => (d, s));

    private static readonly Gen<(string DType, long[] Shape)[]> GoodLayout = GoodTensor.Array[0, 5];

    /// <summary>A valid file for <paramref name="layout"/>: tensors back to back in the order given.</summary>
    private static StCase Valid((string DType, long[] Shape)[] layout)
    {
        var c = new StCase();
        long at = 0;
        for (int i = 0; i < layout.Length; i++)
        {
            var (dtype, shape) = layout[i];
            long bytes = shape.Aggregate((long)SizeOf(dtype), (a, d) => a * d);
            // a few names outside ASCII, which are valid
            string name = i == 2 ? "model.layers.0.ß€😀" : $"model.layers.{i}.weight";
            c.Entries.Add(new Entry { Name = name, DType = dtype, Shape = shape, Begin = at, End = at + bytes });
            at += bytes;
        }
        c.DataLength = at;
        return c;
    }

    private enum Defect
    {
        TruncateData, TrailingData, ShiftOffsets, ReverseOffsets, OffsetsOutside, ShapeMismatch, DTypeSizeChange, BadDim,
        OverflowDims, UnknownDType, Duplicate, BadOffsets, EntryNotObject, MissingField, MetadataWrongType, RootNotObject,
        InvalidJson, LoneSurrogate, InvalidUtf8, HeaderLengthTooLarge, HeaderLengthTooSmall, DeepNesting,
    }

    private static readonly string[] BadDims = ["-1", "-4096", "1.5", "\"4\"", "null", "true", "99999999999999999999", "1e400", "-9223372036854775808", "[]", "{}"];
    private static readonly string[] OverflowShapes =
        ["[2147483648, 2147483648]", "[2147483648, 2147483648, 2147483648]", "[4294967296, 4294967296]", "[9223372036854775807]",
         "[3037000500, 3037000500]", "[2305843009213693952]", "[4611686018427387904, 4]", "[1, 9223372036854775807, 2]", "[1152921504606846976, 16]"];
    private static readonly string[] UnknownDTypes = ["\"Q4\"", "\"f32\"", "\"FP32\"", "\"\"", "\"F32 \"", "\"BF16\\u0000\"", "\"INT8\"", "4", "null", "true", "[\"F32\"]", "{}"];
    private static readonly string[] BadOffsets =
        ["[1.5, 2]", "[\"0\", 16]", "[0]", "[0, 1, 2]", "[]", "null", "{}", "\"0,16\"", "[-8, 0]", "[0, 9223372036854775808]", "[0, 1e400]",
         "[null, null]", "[9223372036854775807, 9223372036854775807]", "[-9223372036854775808, 0]"];
    private static readonly string[] NotObjects = ["5", "[]", "\"x\"", "null", "true", "[\"F32\", [4], [0, 16]]"];
    private static readonly string[] BadMetadata = ["5", "[]", "\"pt\"", "true", "{\"a\": 1}", "{\"a\": {}}", "{\"a\": null}", "{\"a\": [\"x\"]}", "{\"format\": \"pt\", \"n\": 2.5}"];
    private static readonly string[] NotObjectRoots = ["[]", "42", "\"x\"", "null", "true", "[{\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]}]"];
    private static readonly string[] Garbage = ["x", "}", ",", "{}", "]", "\"", "/* */"];
    private static readonly byte[][] InvalidUtf8 = [[0xFF], [0xFE, 0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0xE2, 0x82], [0x80]];
    private static readonly ulong[] LargeLengths = [1UL << 40, 1UL << 63, ulong.MaxValue, long.MaxValue, 1UL << 32, 100_000_001, (ulong)int.MaxValue + 1];

    /// <summary>Applies <paramref name="d"/> with choices <paramref name="a"/> and <paramref name="b"/>; every defect leaves the file invalid.</summary>
    private static void Inject(StCase c, Defect d, int a, int b)
    {
        var nonEmpty = c.Entries.Where(e => e.Bytes > 0 && !e.Touched).ToList();
        var untouched = c.Entries.Where(e => !e.Touched).ToList();
        Entry? Pick(List<Entry> list) => list.Count == 0 ? null : list[a % list.Count];
        string Choose(string[] pool) => pool[b % pool.Length];

        // defects that need a tensor fall back to one that does not
        if (d is Defect.ShiftOffsets or Defect.ReverseOffsets or Defect.DTypeSizeChange && nonEmpty.Count == 0) d = Defect.RootNotObject;
        if (d is Defect.OffsetsOutside or Defect.ShapeMismatch or Defect.BadDim or Defect.OverflowDims or Defect.UnknownDType or Defect.Duplicate
                or Defect.BadOffsets or Defect.EntryNotObject or Defect.MissingField or Defect.LoneSurrogate or Defect.InvalidUtf8 or Defect.DeepNesting
            && untouched.Count == 0) d = Defect.InvalidJson;
        if (d is Defect.TruncateData && c.DataLength == 0) d = Defect.TrailingData;
        // the data length is changed once: a cut and trailing bytes could cancel
        if (d is Defect.TruncateData or Defect.TrailingData && (c.Cut != 0 || c.Trailing != 0)) d = Defect.MetadataWrongType;
        // the whole header is replaced once
        if (d is Defect.RootNotObject or Defect.InvalidJson && (c.HeaderText is not null || c.TextEdit is not null)) d = Defect.HeaderLengthTooLarge;
        if (d is Defect.HeaderLengthTooLarge or Defect.HeaderLengthTooSmall && c.HeaderLength is not null) d = Defect.MetadataWrongType;

        Entry? e;
        switch (d)
        {
            case Defect.TruncateData:
                c.Cut = 1 + b % (int)Math.Min(c.DataLength, int.MaxValue);
                break;
            case Defect.TrailingData:
                c.Trailing = 1 + b % 16;
                break;
            case Defect.ShiftOffsets:
                e = Pick(nonEmpty)!;
                long delta = (1 + b % 16) * (a % 2 == 0 ? 1 : -1);
                e.OffsetsJson = $"[{e.Begin + delta}, {e.End + delta}]";
                e.Touched = true;
                break;
            case Defect.ReverseOffsets:
                e = Pick(nonEmpty)!;
                e.OffsetsJson = $"[{e.End}, {e.Begin}]";
                e.Touched = true;
                break;
            case Defect.OffsetsOutside:
                e = Pick(untouched)!;
                e.OffsetsJson = $"[{e.Begin}, {c.DataLength + 1 + b % 100}]";
                e.Touched = true;
                break;
            case Defect.ShapeMismatch:
                e = Pick(untouched)!;
                e.ShapeJson = $"[{e.Bytes / SizeOf(e.DType) + 1 + b % 3}]";
                e.Touched = true;
                break;
            case Defect.DTypeSizeChange:
                e = Pick(nonEmpty)!;
                var others = DTypes.Where(t => t.Size != SizeOf(e.DType)).ToArray();
                e.DTypeJson = Quote(others[b % others.Length].Name);
                e.Touched = true;
                break;
            case Defect.BadDim:
                e = Pick(untouched)!;
                var dims = e.Shape.Select(x => x.ToString(CultureInfo.InvariantCulture)).ToList();
                dims.Insert(b % (dims.Count + 1), Choose(BadDims));
                e.ShapeJson = "[" + string.Join(", ", dims) + "]";
                e.Touched = true;
                break;
            case Defect.OverflowDims:
                e = Pick(untouched)!;
                e.ShapeJson = Choose(OverflowShapes);
                e.Touched = true;
                break;
            case Defect.UnknownDType:
                e = Pick(untouched)!;
                e.DTypeJson = Choose(UnknownDTypes);
                e.Touched = true;
                break;
            case Defect.Duplicate:
                e = Pick(untouched)!;
                var twin = new Entry { Name = e.Name, DType = e.DType, Shape = e.Shape, Begin = e.Begin, End = e.End, Touched = true };
                c.Entries.Insert(Math.Min(c.Entries.Count, 1 + b % (c.Entries.Count + 1)), twin);
                e.Touched = true;
                break;
            case Defect.BadOffsets:
                e = Pick(untouched)!;
                e.OffsetsJson = Choose(BadOffsets);
                e.Touched = true;
                break;
            case Defect.EntryNotObject:
                e = Pick(untouched)!;
                e.BodyJson = Choose(NotObjects);
                e.Touched = true;
                break;
            case Defect.MissingField:
                e = Pick(untouched)!;
                e.Missing = new[] { "dtype", "shape", "data_offsets" }[b % 3];
                e.Touched = true;
                break;
            case Defect.MetadataWrongType:
                c.Metadata = Choose(BadMetadata);
                break;
            case Defect.RootNotObject:
                c.HeaderText = Choose(NotObjectRoots);
                break;
            case Defect.InvalidJson:
                if (a % 2 == 0)
                    c.TextEdit = t => t[..(1 + b % (t.Length - 1))]; // cut before the closing brace
                else
                {
                    string g = Choose(Garbage);
                    c.TextEdit = t => t + g;
                }
                break;
            case Defect.LoneSurrogate:
                e = Pick(untouched)!;
                string lone = new[] { "\\ud800", "\\udfff", "\\udc00\\ud800" }[b % 3];
                if (a % 2 == 0) e.NameJson = Quote(e.Name)[..^1] + lone + "\"";
                else e.DTypeJson = Quote(e.DType)[..^1] + lone + "\"";
                e.Touched = true;
                break;
            case Defect.InvalidUtf8:
                e = Pick(untouched)!;
                e.NameJson = Quote(e.Name)[..^1] + "@@\"";
                c.BadUtf8 = InvalidUtf8[b % InvalidUtf8.Length];
                e.Touched = true;
                break;
            case Defect.HeaderLengthTooLarge:
                c.HeaderLength = (b % 3) switch
                {
                    0 => (h, file) => (ulong)file - 8 + 1 + (ulong)(a % 1000),    // just past the end of the file
                    1 => (h, file) => h + 1 + (ulong)(a % 64),                      // into the data (0xAB bytes) or past the end
                    _ => (h, file) => LargeLengths[a % LargeLengths.Length],        // absurd
                };
                break;
            case Defect.HeaderLengthTooSmall:
                c.HeaderLength = (h, file) => h - 1 - (ulong)(b % (int)h);
                break;
            case Defect.DeepNesting:
                e = Pick(untouched)!;
                int depth = 65 + b % 200;
                e.Extra = "\"nested\": " + new string('[', depth) + new string(']', depth);
                e.Touched = true;
                break;
        }
        c.Defects.Add(d.ToString());
    }

    private static readonly Gen<(Defect Kind, int A, int B)> DefectGen =
        Gen.Select(Gen.Enum<Defect>(), Gen.Int[0, 1 << 20], Gen.Int[0, 1 << 20], (k, a, b) => (k, a, b));

    private static readonly Gen<StCase> Defective =
        Gen.Select(GoodLayout, DefectGen.Array[1, 3], (layout, defects) =>
        {
            var c = Valid(layout);
            foreach (var (k, a, b) in defects) Inject(c, k, a, b);
            return c;
        });

    [Fact]
    public void InjectedDefects_AreAllRefusedWithACheckpointException()
    {
        using var dir = Fixtures.TempDir();
        string path = dir.File("fuzz.safetensors");
        var (rejected, _) = Fuzzer.Run(output, "safetensors: injected defects", Defective, FuzzBudget.SafeTensorsDefects, seed: 20251128,
            c =>
            {
                File.WriteAllBytes(path, c.Build());
                return Fuzzer.MustReject(() => SafeTensorsFile.Open(path).Dispose(), path);
            }, c => c.ToString());
        Assert.Equal(FuzzBudget.SafeTensorsDefects, rejected);
    }

    [Fact]
    public void ValidLayouts_Load_SoTheDefectsAreWhatIsRefused()
    {
        // The generator's valid files must load, or the defect test would prove nothing.
        using var dir = Fixtures.TempDir();
        string path = dir.File("valid.safetensors");
        var (_, accepted) = Fuzzer.Run(output, "safetensors: valid layouts", GoodLayout.Select(Valid), 200, seed: 7,
            c =>
            {
                File.WriteAllBytes(path, c.Build());
                return CheckAccepted(path, c.Entries.Count);
            }, c => c.ToString());
        Assert.Equal(200, accepted);
    }

    private static readonly Gen<(StCase File, Fuzzer.ByteEdit[] Edits, bool HeaderOnly)> Mutated =
        Gen.Select(GoodLayout.Where(l => l.Length > 0).Select(Valid), Fuzzer.Edit.Array[1, 6], Gen.Int[0, 9].Select(x => x < 8), (c, e, h) => (c, e, h));

    [Fact]
    public void RandomByteEdits_AreRefusedOrLoadConsistently()
    {
        using var dir = Fixtures.TempDir();
        string path = dir.File("fuzz.safetensors");
        var (rejected, _) = Fuzzer.Run(output, "safetensors: random byte edits", Mutated, FuzzBudget.SafeTensorsMutations, seed: 424242,
            m =>
            {
                // mostly inside the header (after the 8-byte length), sometimes anywhere, the length prefix included
                File.WriteAllBytes(path, Fuzzer.Apply(m.File.Build(), m.Edits, m.HeaderOnly ? 8 : 0));
                var outcome = Fuzzer.Load(() => SafeTensorsFile.Open(path).Dispose(), path);
                return outcome == Outcome.Accepted ? CheckAccepted(path, null, dataIntact: false) : outcome;
            }, m => $"edits [{string.Join(", ", m.Edits)}] header-only {m.HeaderOnly} of {m.File}");
        Assert.True(rejected > FuzzBudget.SafeTensorsMutations / 2, $"only {rejected} edited files were refused");
    }

    [Fact]
    public void EveryTruncation_IsRefused()
    {
        using var dir = Fixtures.TempDir();
        string path = dir.File("fuzz.safetensors");
        int total = 0;
        var layouts = GoodLayout.Where(l => l.Length >= 2 && l.Any(t => t.Shape.All(d => d > 0)));
        var (_, accepted) = Fuzzer.Run(output, "safetensors: truncation layouts", layouts.Select(Valid), FuzzBudget.SafeTensorsTruncationLayouts, seed: 99,
            c =>
            {
                var full = c.Build();
                // every prefix: inside the length, inside the header, at the header/data boundary, inside and between tensors
                for (int length = 0; length < full.Length; length++)
                {
                    File.WriteAllBytes(path, full.AsSpan(0, length).ToArray());
                    Fuzzer.MustReject(() => SafeTensorsFile.Open(path).Dispose(), path);
                    total++;
                }
                File.WriteAllBytes(path, full);
                return CheckAccepted(path, c.Entries.Count);
            }, c => c.ToString());
        Assert.Equal(FuzzBudget.SafeTensorsTruncationLayouts, accepted);
        output.WriteLine($"safetensors: {total} truncated files refused");
        Assert.True(total > 300 * FuzzBudget.SafeTensorsTruncationLayouts, $"only {total} truncations");
    }

    /// <summary>
    /// A file that opened must be self-consistent: known dtypes, byte counts matching shape x dtype, the data section
    /// tiled exactly; reading the first and last byte of every tensor through the mapping must work.
    /// </summary>
    private static unsafe Outcome CheckAccepted(string path, int? expectedTensors, bool dataIntact = true)
    {
        using var f = SafeTensorsFile.Open(path);
        if (expectedTensors is { } n) Assert.Equal(n, f.Tensors.Count);
        long at = 0;
        foreach (var t in f.Tensors.Values.OrderBy(t => t.Begin).ThenBy(t => t.End))
        {
            long count = t.Shape.Aggregate(1L, (a, d) => checked(a * d));
            Assert.Equal(checked(count * SizeOf(t.DType)), t.End - t.Begin);
            Assert.Equal(at, t.Begin);
            at = t.End;
            if (t.End > t.Begin)
            {
                byte* p = f.Pointer(t);
                byte first = p[0], last = p[t.End - t.Begin - 1];
                if (dataIntact)
                {
                    Assert.Equal(0xAB, first);
                    Assert.Equal(0xAB, last);
                }
            }
        }
        Assert.Equal(f.DataLength, at);
        return Outcome.Accepted;
    }
}
