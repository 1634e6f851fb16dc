using System.Buffers.Binary;
using Qwen2.Native.Tests.Loading.Gguf;
using Qwen2.Native.Text;
using Xunit.Abstractions;

namespace Qwen2.Native.Tests.Fuzz;

/// <summary>
/// Malformed GGUF files through <see cref="GgufFile.Open"/>, <see cref="Qwen2Model.Load"/> and
/// <see cref="Qwen2Tokenizer.FromGguf(GgufFile)"/>: random byte edits, interesting values in 4- and 8-byte fields,
/// truncations, insertions and deletions of a valid tiny model. Every file is refused with a
/// <see cref="CheckpointException"/> or loads and runs: never another exception, never a crash or huge allocation.
/// </summary>
public sealed class GgufFuzzTests(ITestOutputHelper output)
{
    private static readonly ulong[] Interesting =
    [
        0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 31, 32, 33, 63, 64, 255, 256, 4096, 65535, 65536, int.MaxValue, (ulong)int.MaxValue + 1,
        uint.MaxValue, (ulong)uint.MaxValue + 1, long.MaxValue, (ulong)long.MaxValue + 1, ulong.MaxValue, ulong.MaxValue - 7, 1UL << 40, 1UL << 62,
    ];

    private static byte[] Mutate(byte[] valid, long headerEnd, Random rng)
    {
        var b = (byte[])valid.Clone();
        int header = (int)headerEnd;
        switch (rng.Next(6))
        {
            case 0: // a few random bytes in the header
                for (int i = rng.Next(1, 5); i > 0; i--) b[rng.Next(header)] = (byte)rng.Next(256);
                return b;
            case 1: // an interesting value in an 8-byte field (counts, lengths, dims, offsets)
            {
                int at = rng.Next(header - 8);
                BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at), Interesting[rng.Next(Interesting.Length)]);
                return b;
            }
            case 2: // an interesting value in a 4-byte field (types, n_dims, uint32 values)
            {
                int at = rng.Next(header - 4);
                BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(at), (uint)Interesting[rng.Next(Interesting.Length)]);
                return b;
            }
            case 3: // truncated
                return b.AsSpan(0, rng.Next(b.Length)).ToArray();
            case 4: // bytes inserted into or deleted from the header
            {
                int at = rng.Next(header), n = rng.Next(1, 9);
                if (rng.Next(2) == 0)
                {
                    var extra = new byte[n];
                    rng.NextBytes(extra);
                    return [.. b.AsSpan(0, at), .. extra, .. b.AsSpan(at)];
                }
                return [.. b.AsSpan(0, at), .. b.AsSpan(Math.Min(b.Length, at + n))];
            }
            default: // random bytes anywhere, weights included
                for (int i = rng.Next(1, 9); i > 0; i--) b[rng.Next(b.Length)] = (byte)rng.Next(256);
                return b;
        }
    }

    [Fact]
    public void Ten_thousand_malformed_files_fail_only_with_typed_errors()
    {
        var valid = TinyGgufModel.Build(tied: false).Build();
        using var dir = Fixtures.TempDir();
        string path = dir.File("fuzz.gguf");
        File.WriteAllBytes(path, valid);
        long headerEnd;
        using (var f = GgufFile.Open(path)) headerEnd = f.DataStart;

        const int Iterations = 10_000;
        int refused = 0, loaded = 0;
        var messages = new Dictionary<string, int>();
        for (int i = 0; i < Iterations; i++)
        {
            var rng = new Random(1000 + i);
            var bytes = Mutate(valid, headerEnd, rng);
            File.WriteAllBytes(path, bytes);
            try
            {
                using var file = GgufFile.Open(path);
                _ = Qwen2Tokenizer.FromGguf(file).Encode("the word");
                using var model = Qwen2Model.Load(path, new ModelOptions { Threads = 1 });
                _ = model.Forward([0, 1]);
                loaded++;
            }
            catch (CheckpointException e)
            {
                refused++;
                string key = e.Field ?? "tensor";
                messages[key] = messages.GetValueOrDefault(key) + 1;
            }
            catch (Exception e)
            {
                Assert.Fail($"iteration {i} (seed {1000 + i}): {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
        }
        output.WriteLine($"{refused} refused, {loaded} loaded; refusals by field: {string.Join(", ", messages.OrderByDescending(kv => kv.Value).Select(kv => $"{kv.Key} {kv.Value}"))}");
        Assert.Equal(Iterations, refused + loaded);
        Assert.True(refused > Iterations / 2, $"only {refused} of {Iterations} edits were refused: the mutations barely reach the parser");
        Assert.True(messages.Count > 15, $"refusals came from only {messages.Count} fields");
    }
}
