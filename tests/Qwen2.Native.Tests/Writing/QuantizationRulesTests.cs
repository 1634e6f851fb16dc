using Qwen2.Kernels;
using Qwen2.Native.Gguf;

namespace Qwen2.Native.Tests;

/// <summary>
/// llama.cpp's per-tensor type choice (src/llama-quant.cpp) on the tensors of Qwen2-0.5B (hidden 896: rows that are not
/// whole super-blocks, so K-quants fall back) and Qwen2-1.5B (every row whole super-blocks), written out by hand.
/// </summary>
public class QuantizationRulesTests
{
    // use_more_bits(i, n) = i < n/8 || i >= 7n/8 || (i − n/8) % 3 == 2, evaluated by hand:
    private static readonly int[] MoreBits24 = [0, 1, 2, 5, 8, 11, 14, 17, 20, 21, 22, 23];       // n = 24: n/8 = 3, 7n/8 = 21
    private static readonly int[] MoreBits28 = [0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27]; // n = 28: n/8 = 3, 7n/8 = 24

    [Fact]
    public void UseMoreBitsPicksTheLayersLlamaCppPicks()
    {
        Assert.Equal(MoreBits24, Enumerable.Range(0, 24).Where(i => TensorTypeRules.UseMoreBits(i, 24)));
        Assert.Equal(MoreBits28, Enumerable.Range(0, 28).Where(i => TensorTypeRules.UseMoreBits(i, 28)));
    }

    /// <summary>Every tensor of a shape with its GGUF name and [rows, cols].</summary>
    private static IEnumerable<(string Name, long[] Shape)> Tensors(SyntheticShape s)
    {
        long h = s.HiddenSize, kv = (long)s.NumKeyValueHeads * s.HeadDim, f = s.IntermediateSize;
        yield return ("token_embd.weight", [s.VocabSize, h]);
        for (int i = 0; i < s.NumHiddenLayers; i++)
        {
            string b = $"blk.{i}.";
            yield return (b + "attn_norm.weight", [h]);
            yield return (b + "attn_q.weight", [h, h]);
            yield return (b + "attn_q.bias", [h]);
            yield return (b + "attn_k.weight", [kv, h]);
            yield return (b + "attn_k.bias", [kv]);
            yield return (b + "attn_v.weight", [kv, h]);
            yield return (b + "attn_v.bias", [kv]);
            yield return (b + "attn_output.weight", [h, h]);
            yield return (b + "ffn_norm.weight", [h]);
            yield return (b + "ffn_gate.weight", [f, h]);
            yield return (b + "ffn_up.weight", [f, h]);
            yield return (b + "ffn_down.weight", [h, f]);
        }
        yield return ("output_norm.weight", [h]);
        if (!s.TieWordEmbeddings) yield return ("output.weight", [s.VocabSize, h]);
    }

    /// <summary>The table: (mix, embedding, other matrices, attn_v boosted / not, ffn_down boosted / not), types as named.</summary>
    public static TheoryData<string, GgufFileType, string, string, string, string, string, string> Table => new()
    {
        // Qwen2-0.5B: 896 columns are not whole super-blocks (Q4_K→Q5_0, Q5_K→Q5_1, Q6_K→Q8_0); ffn_down's 4864 are.
        { "qwen2-0.5b", GgufFileType.Q4_K_M, "Q8_0", "Q5_0", "Q8_0", "Q5_0", "Q6_K", "Q4_K" },
        { "qwen2-0.5b", GgufFileType.Q5_K_M, "Q8_0", "Q5_1", "Q8_0", "Q5_1", "Q6_K", "Q5_K" },
        { "qwen2-0.5b", GgufFileType.Q4_K_S, "Q8_0", "Q5_0", "Q5_1", "Q5_0", "Q5_K", "Q4_K" },
        { "qwen2-0.5b", GgufFileType.Q6_K, "Q8_0", "Q8_0", "Q8_0", "Q8_0", "Q6_K", "Q6_K" },
        { "qwen2-0.5b", GgufFileType.Q8_0, "Q8_0", "Q8_0", "Q8_0", "Q8_0", "Q8_0", "Q8_0" },
        { "qwen2-0.5b", GgufFileType.Q4_0, "Q8_0", "Q4_0", "Q4_0", "Q4_0", "Q4_0", "Q4_0" },
        // Qwen2-1.5B: every row whole super-blocks; the tied embedding is the output matrix, Q6_K.
        { "qwen2-1.5b", GgufFileType.Q4_K_M, "Q6_K", "Q4_K", "Q6_K", "Q4_K", "Q6_K", "Q4_K" },
        { "qwen2-1.5b", GgufFileType.Q5_K_M, "Q6_K", "Q5_K", "Q6_K", "Q5_K", "Q6_K", "Q5_K" },
        { "qwen2-1.5b", GgufFileType.Q4_K_S, "Q6_K", "Q4_K", "Q5_K", "Q4_K", "Q5_K", "Q4_K" },
        { "qwen2-1.5b", GgufFileType.Q5_K_S, "Q6_K", "Q5_K", "Q5_K", "Q5_K", "Q5_K", "Q5_K" },
        { "qwen2-1.5b", GgufFileType.Q6_K, "Q6_K", "Q6_K", "Q6_K", "Q6_K", "Q6_K", "Q6_K" },
        { "qwen2-1.5b", GgufFileType.Q8_0, "Q8_0", "Q8_0", "Q8_0", "Q8_0", "Q8_0", "Q8_0" },
        { "qwen2-1.5b", GgufFileType.Q4_0, "Q6_K", "Q4_0", "Q4_0", "Q4_0", "Q4_0", "Q4_0" },
        { "qwen2-1.5b", GgufFileType.Q5_1, "Q6_K", "Q5_1", "Q5_1", "Q5_1", "Q5_1", "Q5_1" },
    };

    [Theory, MemberData(nameof(Table))]
    public void EachTensorGetsLlamaCppsType(string shapeName, GgufFileType mix, string embd, string others, string vBoosted, string vPlain, string downBoosted, string downPlain)
    {
        var s = SyntheticShape.Get(shapeName);
        int n = s.NumHiddenLayers;
        // q4_k_s boosts attn_v of layers 0-3 and ffn_down of the first n/8; the _m mixes the use_more_bits layers.
        Func<int, bool> vBoost = mix == GgufFileType.Q4_K_S ? i => i < 4 : i => (n == 24 ? MoreBits24 : MoreBits28).Contains(i);
        Func<int, bool> downBoost = mix == GgufFileType.Q4_K_S ? i => i < n / 8 : vBoost;
        foreach (var (name, shape) in Tensors(s))
        {
            string expected;
            if (shape.Length == 1) expected = "F32";
            else if (name == "token_embd.weight") expected = embd;
            else if (name.EndsWith("attn_v.weight", StringComparison.Ordinal)) expected = vBoost(Layer(name)) ? vBoosted : vPlain;
            else if (name.EndsWith("ffn_down.weight", StringComparison.Ordinal)) expected = downBoost(Layer(name)) ? downBoosted : downPlain;
            else expected = others;
            Assert.Equal((name, expected), (name, GgufQuantization.TensorType(mix, name, shape, n, s.TieWordEmbeddings).ToString()));
        }
    }

    private static int Layer(string name) => int.Parse(name.Split('.')[1], System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void AnUntiedEmbeddingTakesTheDefaultTypeAndTheOutputMatrixQ6K()
    {
        var s = SyntheticShape.Qwen2_7B; // untied, hidden 3584 = 14 super-blocks
        Assert.Equal(WeightType.Q4_K, GgufQuantization.TensorType(GgufFileType.Q4_K_M, "token_embd.weight", [s.VocabSize, s.HiddenSize], 28, false));
        Assert.Equal(WeightType.Q6_K, GgufQuantization.TensorType(GgufFileType.Q4_K_M, "output.weight", [s.VocabSize, s.HiddenSize], 28, false));
        Assert.Equal(WeightType.Q8_0, GgufQuantization.TensorType(GgufFileType.Q8_0, "output.weight", [s.VocabSize, s.HiddenSize], 28, false));
        Assert.Equal(WeightType.Q6_K, GgufQuantization.TensorType(GgufFileType.Q4_0, "output.weight", [s.VocabSize, s.HiddenSize], 28, false));
        // 896 columns: Q4_K falls back to Q5_0 for an untied embedding, the output matrix to Q8_0.
        Assert.Equal(WeightType.Q5_0, GgufQuantization.TensorType(GgufFileType.Q4_K_M, "token_embd.weight", [151936, 896], 24, false));
        Assert.Equal(WeightType.Q8_0, GgufQuantization.TensorType(GgufFileType.Q4_K_M, "output.weight", [151936, 896], 24, false));
    }

    [Fact]
    public void RowsThatFitNoBlockFallBackToF16OrAreRefused()
    {
        // 176 columns: neither 256 nor 32 divides them. K-quants end at F16 (as llama.cpp's "must use F16");
        // a 32-element default has no fallback in llama.cpp, so it is an error naming the tensor.
        Assert.Equal(WeightType.F16, GgufQuantization.TensorType(GgufFileType.Q4_K_M, "blk.0.ffn_down.weight", [64, 176], 2, true));
        Assert.Equal(WeightType.F16, GgufQuantization.TensorType(GgufFileType.Q6_K, "blk.0.ffn_down.weight", [64, 176], 2, true));
        var e = Assert.Throws<ArgumentException>(() => GgufQuantization.TensorType(GgufFileType.Q8_0, "blk.0.ffn_down.weight", [64, 176], 2, true));
        Assert.Contains("blk.0.ffn_down.weight", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => GgufQuantization.TensorType(GgufFileType.F16, "blk.0.ffn_down.weight", [64, 256], 2, true));
    }
}
