using Qwen2.Kernels;
using Qwen2.Reference;
using Xunit.Abstractions;

namespace Qwen2.Native.Tests.Reference;

/// <summary>
/// llama.cpp's own quantizer and logits against the float64 reference on the dequantized weights: checks that the
/// harness, the exporter and <see cref="WeightTypes.ToSingle"/> read every block type as ggml does (a misread block
/// moves the logits by whole units), and measures llama.cpp's error, the yardstick of the engine's.
/// </summary>
public class LlamaQuantizedTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("quant-256")]
    [InlineData("quant-896")]
    public void Llama_cpp_on_the_f32_export_matches_the_reference(string shapeName)
    {
        var shape = QuantizedFiles.Shape(shapeName);
        string gguf = QuantizedFiles.F32(shape);
        var tokens = QuantizedFiles.Tokens(shape, QuantizedCase.Positions);
        var reference = ReferenceForward.Logits(ReferenceModel.FromGguf(gguf), tokens);
        double error = LogitError.MaxAbs(LlamaCpp.Logits(gguf, tokens), reference);
        output.WriteLine($"{shapeName} f32: llama.cpp vs float64 reference, max abs {error:G3} (max |logit| {LogitError.MaxAbs(reference):G3})");
        Assert.True(error < 1e-3, $"llama.cpp's logits on the F32 export are {error:G3} from the reference");
    }

    [Theory]
    [MemberData(nameof(QuantizedCase.All), MemberType = typeof(QuantizedCase))]
    public void Llama_cpp_quantized_file_matches_the_reference_on_its_dequantized_weights(string shapeName, string mix)
    {
        var c = QuantizedCase.Get(shapeName, mix);
        var file = GgufReferenceFile.Read(c.Path);
        var types = file.Tensors.Values.GroupBy(t => t.Type).OrderBy(g => g.Key).Select(g => $"{g.Key}x{g.Count()}");
        // Every matrix quantized (norms and biases stay F32), so the comparison measures quantized products.
        Assert.All(file.Tensors.Values.Where(t => t.Dims.Length == 2), t => Assert.True(WeightTypes.IsQuantized(t.Type), $"{t.Name} is {t.Type}"));
        output.WriteLine($"{c} [{string.Join(' ', types)}]: llama.cpp vs float64 reference on the dequantized weights, max abs {c.LlamaError:G3} (max |logit| {c.Scale:G3})");
        // llama.cpp quantizes activations to 8 bits; a block misread by the reference's dequantization costs far more.
        Assert.True(c.LlamaError < 0.05 * c.Scale, $"llama.cpp is {c.LlamaError:G3} from the reference on {c.Path}");
    }
}
