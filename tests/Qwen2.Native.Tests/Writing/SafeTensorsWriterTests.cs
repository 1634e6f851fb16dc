using System.Runtime.InteropServices;
using System.Text;
using Qwen2.Kernels;

namespace Qwen2.Native.Tests;

/// <summary>SafeTensorsWriter: files the reader accepts, with the bytes given, the Hugging Face header layout, and no partial files.</summary>
public class SafeTensorsWriterTests
{
    private static byte[] Bytes(int count, int salt) => Enumerable.Range(0, count).Select(i => (byte)(i * 31 + salt)).ToArray();

    [Fact]
    public void RoundTripsEveryDtypeAndShapeThroughTheReader()
    {
        using var dir = Fixtures.TempDir();
        string path = dir.File("t.safetensors");
        TensorSpec[] specs =
        [
            new("a.f32", WeightType.F32, [3, 5]),
            new("b.bf16", WeightType.BF16, [7]),
            new("c.f16", WeightType.F16, [2, 3, 4]),
            new("d.scalar", WeightType.F32, []),
            new("e.empty", WeightType.BF16, [0, 4]),
            new("f.last", WeightType.F16, [1]),
        ];
        var data = specs.Select((s, i) => Bytes((int)s.ByteCount, i)).ToArray();
        using (var w = new SafeTensorsWriter(path, specs))
        {
            Assert.Equal(specs[0], w.Current);
            // a.f32 in uneven chunks, the others whole
            w.Write(data[0].AsSpan(0, 7));
            w.Write(data[0].AsSpan(7, 30));
            w.Write(data[0].AsSpan(37));
            for (int i = 1; i < data.Length; i++) w.Write(data[i]);
            Assert.Null(w.Current);
            Assert.False(File.Exists(path)); // only the .partial exists until Complete
            w.Complete();
            Assert.Equal(w.TotalBytes, new FileInfo(path).Length);
            Assert.Equal(SafeTensorsWriter.FileSize(specs), w.TotalBytes);
        }
        Assert.False(File.Exists(path + ".partial"));

        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(specs.Length, file.Tensors.Count);
        foreach (var (spec, expected) in specs.Zip(data))
        {
            var info = file.Tensors[spec.Name];
            Assert.Equal(TensorSpec.HeaderName(spec.DType), info.DType);
            Assert.Equal(spec.Shape, info.Shape);
            Assert.Equal(expected, Read(file, info));
        }
    }

    private static unsafe byte[] Read(SafeTensorsFile file, TensorInfo info) =>
        new ReadOnlySpan<byte>(file.Pointer(info), checked((int)(info.End - info.Begin))).ToArray();

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(5)]
    public void HeaderIsSpacePaddedTo8BytesWithPyTorchMetadataFirst(int nameLength)
    {
        using var dir = Fixtures.TempDir();
        string path = dir.File("t.safetensors");
        using (var w = new SafeTensorsWriter(path, [new TensorSpec("x" + new string('y', nameLength), WeightType.F32, [2])]))
        {
            w.Write([1f, 2f]);
            w.Complete();
        }
        byte[] all = File.ReadAllBytes(path);
        long headerLength = BitConverter.ToInt64(all, 0);
        Assert.Equal(0, headerLength % 8);
        string header = Encoding.UTF8.GetString(all, 8, (int)headerLength);
        Assert.StartsWith("{\"__metadata__\":{\"format\":\"pt\"},", header);
        Assert.Equal('}', header.TrimEnd(' ')[^1]);
        Assert.Equal(header.TrimEnd(' ').Length + (8 - (header.TrimEnd(' ').Length % 8)) % 8, header.Length);
        Assert.Equal(new[] { 1f, 2f }, MemoryMarshal.Cast<byte, float>(all.AsSpan(8 + (int)headerLength)).ToArray());
    }

    [Fact]
    public void EmptyMetadataAndNoTensorsMakeAValidFile()
    {
        using var dir = Fixtures.TempDir();
        string path = dir.File("t.safetensors");
        using (var w = new SafeTensorsWriter(path, [], new Dictionary<string, string>()))
            w.Complete();
        byte[] all = File.ReadAllBytes(path);
        Assert.Equal(16, all.Length);
        Assert.Equal("{}      ", Encoding.UTF8.GetString(all, 8, 8));
        using var file = SafeTensorsFile.Open(path);
        Assert.Empty(file.Tensors);
        Assert.Equal(0, file.DataLength);
    }

    [Fact]
    public void CustomMetadataIsWrittenAndTheReaderSkipsIt()
    {
        using var dir = Fixtures.TempDir();
        string path = dir.File("t.safetensors");
        using (var w = new SafeTensorsWriter(path, [new TensorSpec("w", WeightType.BF16, [1])], new Dictionary<string, string> { ["note"] = "a \"quoted\" value" }))
        {
            w.Write([0.5f]);
            w.Complete();
        }
        Assert.Contains("\"note\":\"a \\u0022quoted\\u0022 value\"", File.ReadAllText(path));
        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(["w"], file.Tensors.Keys);
    }

    [Fact]
    public void FloatsAreNarrowedToNearestEven()
    {
        using var dir = Fixtures.TempDir();
        string path = dir.File("t.safetensors");
        // 1 + 2^-8 is halfway between two bfloat16 values: it rounds to the even one, 1.0; 1 + 3*2^-8 rounds up.
        float[] values = [1f + 1f / 256, 1f + 3f / 256, -2.5f, 65504f, float.PositiveInfinity];
        using (var w = new SafeTensorsWriter(path, [new TensorSpec("b", WeightType.BF16, [5]), new TensorSpec("h", WeightType.F16, [5]), new TensorSpec("f", WeightType.F32, [5])]))
        {
            w.Write(values);
            w.Write(values);
            w.Write(values);
            w.Complete();
        }
        using var file = SafeTensorsFile.Open(path);
        float[] Widen(string name)
        {
            var info = file.Tensors[name];
            var result = new float[5];
            WeightTypes.ToSingle(file.WeightTypeOf(info), Read(file, info), result);
            return result;
        }
        Assert.Equal([1f, 1f + 4f / 256, -2.5f, 65536f, float.PositiveInfinity], Widen("b"));
        Assert.Equal([1f + 1f / 256, 1f + 3f / 256, -2.5f, 65504f, float.PositiveInfinity], Widen("h"));
        Assert.Equal(values, Widen("f"));
        Assert.True(float.IsNaN(BitConverter.Int32BitsToSingle(SafeTensorsWriter.ToBFloat16(float.NaN) << 16)));
    }

    [Fact]
    public void ChunksPastTheCurrentTensorAreRefusedWithItsName()
    {
        using var dir = Fixtures.TempDir();
        using var w = new SafeTensorsWriter(dir.File("t.safetensors"), [new TensorSpec("first", WeightType.F32, [2]), new TensorSpec("second", WeightType.F32, [2])]);
        var e = Assert.Throws<InvalidOperationException>(() => w.Write(new byte[12]));
        Assert.Contains("'first'", e.Message);
        Assert.Contains("needs 8 more bytes", e.Message);
        var f = Assert.Throws<InvalidOperationException>(() => w.Write(new float[3]));
        Assert.Contains("needs 2 more elements", f.Message);
        w.Write(new float[2]);
        w.Write(new float[2]);
        Assert.Throws<InvalidOperationException>(() => w.Write(new byte[1]));
    }

    [Fact]
    public void CompletingEarlyNamesTheMissingTensorAndDisposingDeletesThePartialFile()
    {
        using var dir = Fixtures.TempDir();
        string path = dir.File("t.safetensors");
        File.WriteAllText(path, "an older file");
        using (var w = new SafeTensorsWriter(path, [new TensorSpec("a", WeightType.F32, [1]), new TensorSpec("b", WeightType.F16, [4])]))
        {
            w.Write([1f]);
            var e = Assert.Throws<InvalidOperationException>(w.Complete);
            Assert.Contains("'b'", e.Message);
            Assert.Contains("8 bytes", e.Message);
            Assert.True(File.Exists(path + ".partial"));
        }
        Assert.False(File.Exists(path + ".partial"));
        Assert.Equal("an older file", File.ReadAllText(path)); // an abandoned write leaves the old file alone
    }

    [Theory]
    [InlineData("", "empty name")]
    [InlineData("__metadata__", "reserved")]
    [InlineData("dup", "listed twice")]
    [InlineData("neg", "negative dimension")]
    public void BadTensorListsAreRefused(string name, string expected)
    {
        using var dir = Fixtures.TempDir();
        TensorSpec[] specs = name switch
        {
            "dup" => [new("dup", WeightType.F32, [1]), new("dup", WeightType.F32, [1])],
            "neg" => [new("neg", WeightType.F32, [2, -1])],
            _ => [new(name, WeightType.F32, [1])],
        };
        var e = Assert.Throws<ArgumentException>(() => new SafeTensorsWriter(dir.File("t.safetensors"), specs));
        Assert.Contains(expected, e.Message);
        Assert.Equal("tensors", e.ParamName);
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir.Path));
    }
}
