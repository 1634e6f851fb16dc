using Xunit.Abstractions;

namespace Qwen2.Native.Tests.Loading.Gguf;

/// <summary>
/// Quantized GGUF weights stay memory-mapped: loading a large Q8_0 file copies nothing into process memory and
/// touches few of its pages; a forward then reads the tied lm_head in place. Runs alone, as the BF16 test does.
/// </summary>
[Collection(ProcessMemoryCollection.Name)]
public sealed class GgufMappedWeightsTests(ITestOutputHelper output)
{
    [Fact]
    public void Q8_0_weights_are_mapped_not_copied()
    {
        const int vocab = 65536, hidden = 2048, heads = 16, inter = 64;
        var g = new RawGguf { HeaderOnly = true }
            .String("general.architecture", "qwen2")
            .UInt32("qwen2.context_length", 512).UInt32("qwen2.embedding_length", hidden).UInt32("qwen2.block_count", 1)
            .UInt32("qwen2.feed_forward_length", inter).UInt32("qwen2.attention.head_count", heads).UInt32("qwen2.attention.head_count_kv", heads)
            .Float32("qwen2.rope.freq_base", 1e6f).Float32("qwen2.attention.layer_norm_rms_epsilon", 1e-6f)
            .Strings("tokenizer.ggml.tokens", Enumerable.Range(0, vocab).Select(i => $"t{i}"));
        g.Tensor("token_embd.weight", [hidden, vocab], GgmlType.Q8_0);
        g.Tensor("blk.0.attn_norm.weight", [hidden]);
        foreach (var n in new[] { "attn_q", "attn_k", "attn_v" })
        {
            g.Tensor($"blk.0.{n}.weight", [hidden, hidden], GgmlType.Q8_0);
            g.Tensor($"blk.0.{n}.bias", [hidden]);
        }
        g.Tensor("blk.0.attn_output.weight", [hidden, hidden], GgmlType.Q8_0);
        g.Tensor("blk.0.ffn_norm.weight", [hidden]);
        g.Tensor("blk.0.ffn_gate.weight", [hidden, inter], GgmlType.Q8_0);
        g.Tensor("blk.0.ffn_up.weight", [hidden, inter], GgmlType.Q8_0);
        g.Tensor("blk.0.ffn_down.weight", [inter, hidden], GgmlType.Q8_0);
        g.Tensor("output_norm.weight", [hidden]);
        var header = g.Build();

        using var dir = Fixtures.TempDir();
        string path = dir.File("big-q8_0.gguf");
        long fileSize;
        using (var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
        {
            fs.Write(header);
            // Every Q8_0 block gets scale 1/64 (binary16 0x2400) and small quants, so the pages are real, not holes.
            var chunk = new byte[34 * 1024];
            for (int b = 0; b < chunk.Length; b += 34)
            {
                chunk[b] = 0x00; chunk[b + 1] = 0x24;
                for (int i = 2; i < 34; i++) chunk[b + i] = (byte)(i * 3 - 40);
            }
            long data = g.Tensors.Sum(t => (RawGguf.Bytes(t) + 31) / 32 * 32);
            for (long left = data; left > 0; left -= chunk.Length) fs.Write(chunk, 0, (int)Math.Min(left, chunk.Length));
            fileSize = fs.Length;
        }
        Assert.True(fileSize > 128L << 20, $"file is only {fileSize} bytes");

        // JIT the load path first so code pages do not count.
        using (var warm = Fixtures.TempDir())
        {
            File.WriteAllBytes(warm.File("w.gguf"), TinyGgufModel.Build().Build());
            using var m = Qwen2Model.Load(warm.File("w.gguf"), new ModelOptions { Threads = 1 });
            m.Forward([1]);
        }

        long anonBefore = LoadingErrorTestsMappedWeights.AnonymousBytes();
        using var model = Qwen2Model.Load(path, new ModelOptions { Threads = 1 });
        long copied = LoadingErrorTestsMappedWeights.AnonymousBytes() - anonBefore;
        long mappedAfterLoad = LoadingErrorTestsMappedWeights.MappedBytes(path);
        Assert.True(copied < fileSize / 4, $"loading a {fileSize}-byte Q8_0 file grew anonymous memory by {copied} bytes");
        Assert.True(mappedAfterLoad < fileSize / 4, $"loading touched {mappedAfterLoad} bytes of the {fileSize}-byte mapping");

        var logits = model.Forward([1]);
        Assert.Equal(vocab, logits.VocabSize);
        long mappedAfterForward = LoadingErrorTestsMappedWeights.MappedBytes(path);
        output.WriteLine($"file {fileSize} bytes; anonymous +{copied} after load; mapping resident {mappedAfterLoad} after load, {mappedAfterForward} after one forward");
        Assert.True(mappedAfterForward > fileSize / 2, $"a forward over a {fileSize}-byte file left only {mappedAfterForward} bytes of its mapping resident");
    }
}
