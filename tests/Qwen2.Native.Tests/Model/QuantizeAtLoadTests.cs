using Qwen2.Kernels;

namespace Qwen2.Native.Tests;

/// <summary>ModelOptions.Quantize: the matrices quantized at load into memory the model owns; bad types refused.</summary>
public class QuantizeAtLoadTests
{
    [Fact]
    public void Quantized_matrices_are_read_instead_of_the_mapped_floats()
    {
        string dir = QuantizedCheckpoints.Checkpoint(QuantizedCheckpoints.H256);
        using var floats = Qwen2Model.Load(dir, new ModelOptions { Threads = 2 });
        using var q8 = Qwen2Model.Load(dir, new ModelOptions { Threads = 2, Quantize = WeightType.Q8_0 });
        using var q4 = Qwen2Model.Load(dir, new ModelOptions { Threads = 2, Quantize = WeightType.Q4_K });
        // Decode reads 34 bytes per 32 weights for Q8_0 instead of 64 for BF16; Q4_K less again (its lm_head is Q6_K).
        var s = QuantizedCheckpoints.H256;
        long matrices = (long)s.NumHiddenLayers * (2L * s.HiddenSize * s.HiddenSize + 2L * s.HiddenSize * 128 + 3L * s.HiddenSize * s.IntermediateSize)
            + (long)s.VocabSize * s.HiddenSize;
        Assert.InRange(q8.DecodeBytesPerToken, matrices * 34 / 32, matrices * 34 / 32 + 64 * 1024);
        Assert.True(q4.DecodeBytesPerToken < q8.DecodeBytesPerToken);
        int[] ids = [9707, 11, 1879];
        var a = floats.Forward(ids);
        var b = q8.Forward(ids);
        double worst = 0, scale = 0;
        for (int i = 0; i < a.Values.Length; i++) { worst = Math.Max(worst, Math.Abs(a.Values[i] - b.Values[i])); scale = Math.Max(scale, Math.Abs(a.Values[i])); }
        Assert.True(worst > 0 && worst < 0.02 * scale, $"Q8_0 logits differ from BF16's by {worst} (max |logit| {scale})");
    }

    [Fact]
    public void Float_types_are_refused()
    {
        string dir = Fixtures.Model("tiny-bf16");
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Qwen2Model.Load(dir, new ModelOptions { Quantize = WeightType.F16 }));
        Assert.Contains("Quantize", e.Message);
    }
}
