using Qwen2.Reference;
using Qwen2.Kernels;
using Qwen2.Native.Gguf;

namespace Qwen2.Native.Tests;

/// <summary>
/// llama.cpp (LLamaSharp 0.30.0, CPU) loads the quantized files the exporter writes, and its logits on them are close
/// to the engine's on the same quantized weights (<see cref="ModelOptions.Quantize"/> with the mix's rules gives the
/// very bytes the file holds): llama.cpp reads our blocks, types and metadata as we mean them.
/// </summary>
public class LlamaCppQuantizedTests
{
    private static readonly int[] Ids = [9707, 11, 1879, 0, 358, 1079, 264, 1614];

    public static TheoryData<GgufFileType> Mixes => new() { GgufFileType.Q8_0, GgufFileType.Q4_0, GgufFileType.Q4_K_M, GgufFileType.Q5_K_M, GgufFileType.Q6_K };

    [Theory, MemberData(nameof(Mixes))]
    public void Llama_cpp_loads_our_quantized_file_and_agrees_with_our_logits(GgufFileType mix)
    {
        var shape = QuantizedCheckpoints.H256;
        string gguf = QuantizedCheckpoints.Gguf(shape, mix);
        float[][] theirs = LlamaCpp.Logits(gguf, Ids);

        var boost = mix is GgufFileType.Q4_K_M or GgufFileType.Q5_K_M ? LayerBoost.MediumK : LayerBoost.None;
        using var quantized = Qwen2Model.Load(QuantizedCheckpoints.Checkpoint(shape),
            new ModelOptions { Threads = 2, Quantize = GgufQuantization.DefaultType(mix), QuantizeBoost = boost });
        using var floats = Qwen2Model.Load(QuantizedCheckpoints.Checkpoint(shape), new ModelOptions { Threads = 2 });
        var ours = quantized.Forward(Ids);
        var reference = floats.Forward(Ids);

        double diff = 0, quantization = 0, scale = 0;
        for (int i = 0; i < Ids.Length; i++)
        {
            Assert.Equal(ours.VocabSize, theirs[i].Length);
            for (int j = 0; j < ours.VocabSize; j++)
            {
                diff = Math.Max(diff, Math.Abs(theirs[i][j] - ours[i][j]));
                quantization = Math.Max(quantization, Math.Abs(ours[i][j] - reference[i][j]));
                scale = Math.Max(scale, Math.Abs(reference[i][j]));
            }
        }
        // The engines differ only in how they round activations for the integer dot products. Quantizing weights to
        // 4-6 bits moves the logits much more than that, so a block llama.cpp misread would show as a difference of
        // that size; 8-bit weights move them about as little as the activations' rounding does.
        Assert.True(diff <= 0.02 * scale, $"{mix}: llama.cpp's logits differ from ours by {diff} (max |logit| {scale})");
        if (mix != GgufFileType.Q8_0)
            Assert.True(diff <= 0.5 * quantization, $"{mix}: llama.cpp vs ours {diff} is not well below the quantization's own effect {quantization}");
    }
}
