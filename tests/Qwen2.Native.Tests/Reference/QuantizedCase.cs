using System.Collections.Concurrent;
using Qwen2.Reference;

namespace Qwen2.Native.Tests.Reference;

/// <summary>
/// One llama.cpp-quantized test file with what every comparison on it needs, computed once per test run: the prompt,
/// the float64 reference's logits on the dequantized weights, and llama.cpp's logits (flash attention off, F32 cache).
/// </summary>
public sealed class QuantizedCase
{
    /// <summary>Prompt positions compared.</summary>
    public const int Positions = 12;

    private static readonly ConcurrentDictionary<(string, string), Lazy<QuantizedCase>> Cases = new();

    private QuantizedCase(SyntheticShape shape, string mix)
    {
        Shape = shape; Mix = mix;
        Path = QuantizedFiles.Quantized(shape, mix);
        Tokens = QuantizedFiles.Tokens(shape, Positions);
        Reference = ReferenceModel.FromGguf(Path);
        ReferenceLogits = ReferenceForward.Logits(Reference, Tokens);
        LlamaLogits = LlamaCpp.Logits(Path, Tokens);
        LlamaError = LogitError.MaxAbs(LlamaLogits, ReferenceLogits);
    }

    /// <summary>The case of <paramref name="shapeName"/> (a <see cref="QuantizedFiles"/> shape) and <paramref name="mix"/>.</summary>
    public static QuantizedCase Get(string shapeName, string mix) =>
        Cases.GetOrAdd((shapeName, mix), k => new Lazy<QuantizedCase>(() => new QuantizedCase(QuantizedFiles.Shape(k.Item1), k.Item2))).Value;

    /// <summary>Every shape and mix.</summary>
    public static TheoryData<string, string> All()
    {
        var data = new TheoryData<string, string>();
        foreach (var shape in new[] { QuantizedFiles.Wide256, QuantizedFiles.Wide896 })
            foreach (string mix in LlamaCpp.Mixes) data.Add(shape.Name, mix);
        return data;
    }

    public SyntheticShape Shape { get; }
    public string Mix { get; }
    public string Path { get; }
    public int[] Tokens { get; }
    public ReferenceModel Reference { get; }
    public double[][] ReferenceLogits { get; }
    public float[][] LlamaLogits { get; }
    public double LlamaError { get; }

    /// <summary>The largest |reference logit|, the scale errors are read against.</summary>
    public double Scale => LogitError.MaxAbs(ReferenceLogits);

    public override string ToString() => $"{Shape.Name} {Mix}";
}
