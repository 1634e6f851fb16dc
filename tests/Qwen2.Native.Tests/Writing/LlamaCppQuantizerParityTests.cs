using Qwen2.Reference;
using System.Runtime.InteropServices;
using LLama;
using LLama.Native;
using Qwen2.Kernels;
using Qwen2.Native.Gguf;

namespace Qwen2.Native.Tests;

/// <summary>
/// Our quantized files against llama.cpp's own quantizer (LLamaQuantizer, LLamaSharp 0.30.0) run on the F32 export of
/// the same checkpoint: every tensor gets the same type, and its error against the original floats (RMSE after
/// dequantization) is no worse than 1.1 times llama.cpp's.
/// </summary>
public class LlamaCppQuantizerParityTests
{
    public static TheoryData<string, GgufFileType> Cases => new()
    {
        { "h256", GgufFileType.Q8_0 },
        { "h256", GgufFileType.Q4_0 },
        { "h256", GgufFileType.Q4_K_M },
        { "h256", GgufFileType.Q5_K_M },
        { "h256", GgufFileType.Q6_K },
        { "h896", GgufFileType.Q4_K_M },
    };

    [Theory, MemberData(nameof(Cases))]
    public void Same_types_and_no_worse_error_than_llama_cpps_quantizer(string shapeName, GgufFileType mix)
    {
        var shape = shapeName == "h256" ? QuantizedCheckpoints.H256 : QuantizedCheckpoints.H896;
        string f32 = QuantizedCheckpoints.Gguf(shape, GgufFileType.F32);
        using var dir = Fixtures.TempDir();
        LlamaCpp.Configure(); // loads the CPU backend LLamaSharp picks; the quantizer entry point alone does not
        string theirsPath = dir.File("llama.gguf");
        Assert.True(LLamaQuantizer.Quantize(f32, theirsPath, (LLamaFtype)(int)mix, nthread: 2, allowRequantize: false, quantizeOutputTensor: true),
            $"llama.cpp failed to quantize {f32} to {mix}");
        var original = GgufTests.GgufFile.Read(f32);
        var theirs = GgufTests.GgufFile.Read(theirsPath);
        var ours = GgufTests.GgufFile.Read(QuantizedCheckpoints.Gguf(shape, mix));

        Assert.Equal(theirs.Tensors.Keys.Order(), ours.Tensors.Keys.Order());
        foreach (var (name, t) in theirs.Tensors)
        {
            var o = ours.Tensors[name];
            Assert.Equal((name, t.Type), (name, o.Type));
            Assert.Equal(t.Dims, o.Dims);
            if (t.Type == GgmlType.F32) continue;
            var x = MemoryMarshal.Cast<byte, float>(original.Data(name));
            double rmseTheirs = Rmse(x, theirs.Data(name), t.Type), rmseOurs = Rmse(x, ours.Data(name), o.Type);
            Assert.True(rmseOurs <= 1.1 * rmseTheirs + 1e-12, $"{mix} {name} ({o.Type}): our RMSE {rmseOurs:G4} > 1.1 × llama.cpp's {rmseTheirs:G4}");
        }
    }

    private static double Rmse(ReadOnlySpan<float> x, ReadOnlySpan<byte> quantized, GgmlType type)
    {
        var y = new float[x.Length];
        WeightTypes.ToSingle(GgmlTypeLayout.ToWeightType(type), quantized, y);
        double sum = 0;
        for (int i = 0; i < x.Length; i++) sum += (double)(x[i] - y[i]) * (x[i] - y[i]);
        return Math.Sqrt(sum / x.Length);
    }
}
