using System.Buffers.Binary;

namespace Qwen2.Native.Tests.Loading.Gguf;

/// <summary>
/// Q8_0 matrices load in place from a GGUF file and compute: the logits stay close to those of an F32 file holding
/// the same weights dequantized (the only difference is the kernels' per-block quantization of the activations).
/// </summary>
public sealed class GgufQuantizedTests
{
    /// <summary>ggml's reference Q8_0 quantization of one row: per 32 values, d = max|x| / 127 (binary16), q = round(x / d).</summary>
    private static (byte[] Blocks, float[] Dequantized) Q8_0(float[] x)
    {
        var blocks = new byte[x.Length / 32 * 34];
        var back = new float[x.Length];
        for (int b = 0; b < x.Length / 32; b++)
        {
            float amax = 0;
            for (int i = 0; i < 32; i++) amax = MathF.Max(amax, MathF.Abs(x[b * 32 + i]));
            var d = (Half)(amax / 127);
            float id = amax == 0 ? 0 : 127 / amax;
            BinaryPrimitives.WriteHalfLittleEndian(blocks.AsSpan(b * 34), d);
            for (int i = 0; i < 32; i++)
            {
                sbyte q = (sbyte)MathF.Round(x[b * 32 + i] * id);
                blocks[b * 34 + 2 + i] = (byte)q;
                back[b * 32 + i] = (float)d * q;
            }
        }
        return (blocks, back);
    }

    [Fact]
    public void Q8_0_matrices_compute_close_to_their_dequantized_weights()
    {
        var quantized = TinyGgufModel.Build(seed: 4, tied: false);
        var reference = TinyGgufModel.Build(seed: 4, tied: false);
        var payloads = new Dictionary<string, byte[]>();
        for (int i = 0; i < quantized.Tensors.Count; i++)
        {
            var t = quantized.Tensors[i];
            if (t.Dims.Length != 2 || t.Dims[0] % 32 != 0) continue;
            var (blocks, back) = Q8_0(t.Values!);
            t.Type = (uint)GgmlType.Q8_0;
            t.Values = null;
            payloads[t.Name] = blocks;
            reference.Tensors[i].Values = back;
        }
        using var dir = Fixtures.TempDir();
        File.WriteAllBytes(dir.File("q8.gguf"), WithPayloads(quantized, payloads));
        File.WriteAllBytes(dir.File("f32.gguf"), reference.Build());

        using var q8 = Qwen2Model.Load(dir.File("q8.gguf"), new ModelOptions { Threads = 1 });
        using var f32 = Qwen2Model.Load(dir.File("f32.gguf"), new ModelOptions { Threads = 1 });
        Assert.Equal("Q8_0", q8.Tensors.Single(t => t.Tensor.Name == "blk.0.ffn_up.weight").Tensor.DType);
        Assert.True(q8.WeightBytes < f32.WeightBytes / 3, $"{q8.WeightBytes} bytes of Q8_0 against {f32.WeightBytes} of F32");
        int[] tokens = [5, 77, 200, 261, 3];
        var a = q8.Forward(tokens);
        var b = f32.Forward(tokens);
        float worst = 0, scale = 0;
        for (int i = 0; i < a.Values.Length; i++)
        {
            worst = MathF.Max(worst, MathF.Abs(a.Values[i] - b.Values[i]));
            scale = MathF.Max(scale, MathF.Abs(b.Values[i]));
        }
        Assert.True(scale > 0.1f, $"logits are all near zero ({scale}); the comparison would prove nothing");
        Assert.True(worst < 0.02f * scale, $"Q8_0 logits differ from the dequantized F32 model's by {worst} (largest logit {scale})");
    }

    /// <summary>Builds the file, then writes each quantized tensor's blocks at its offset in the data section.</summary>
    private static byte[] WithPayloads(RawGguf g, Dictionary<string, byte[]> payloads)
    {
        var bytes = g.Build();
        using var dir = Fixtures.TempDir();
        File.WriteAllBytes(dir.File("x.gguf"), bytes);
        using var file = GgufFile.Open(dir.File("x.gguf"));
        foreach (var t in file.Tensors)
            if (payloads.TryGetValue(t.Name, out var p))
            {
                Assert.Equal(t.ByteCount, p.Length);
                p.CopyTo(bytes.AsSpan((int)(file.DataStart + t.Offset)));
            }
        return bytes;
    }
}
