using Qwen2.Reference;
using Xunit.Abstractions;

namespace Qwen2.Native.Tests.Reference;

/// <summary>
/// The engine on files quantized by llama.cpp's own quantizer, each mix on a K-quant-friendly and a fallback shape:
/// its logits measured against the float64 reference on the dequantized weights, beside llama.cpp's on the same file;
/// its greedy tokens against the reference's; its cached decoding against the uncached one.
/// </summary>
public class EngineQuantizedTests(ITestOutputHelper output)
{
    private const int GreedySteps = 6;

    [Theory]
    [MemberData(nameof(QuantizedCase.All), MemberType = typeof(QuantizedCase))]
    public void Logits_are_as_close_to_the_reference_as_llama_cpp_s(string shapeName, string mix)
    {
        var c = QuantizedCase.Get(shapeName, mix);
        using var model = Qwen2Model.Load(c.Path, new ModelOptions { Threads = 2 });
        var logits = model.Forward(c.Tokens);
        var rows = Enumerable.Range(0, logits.Rows).Select(r => logits[r].ToArray()).ToArray();
        double ours = LogitError.MaxAbs(rows, c.ReferenceLogits);
        output.WriteLine($"{c}: max abs error against the float64 reference: ours {ours:G3}, llama.cpp {c.LlamaError:G3} (ratio {ours / c.LlamaError:F2}, max |logit| {c.Scale:G3})");
        // Both engines quantize activations; the bound is a factor of 2 of llama.cpp's own error.
        Assert.True(ours <= 2 * c.LlamaError, $"{c}: our logits are {ours:G3} from the reference, over twice llama.cpp's {c.LlamaError:G3}");
    }

    [Theory]
    [MemberData(nameof(QuantizedCase.All), MemberType = typeof(QuantizedCase))]
    public void Greedy_tokens_equal_the_reference_s_with_and_without_cache(string shapeName, string mix)
    {
        var c = QuantizedCase.Get(shapeName, mix);
        using var model = Qwen2Model.Load(c.Path, new ModelOptions { Threads = 2 });

        // With the cache: the prompt once, then one token a step.
        var cached = new List<int>();
        var cachedRows = new List<float[]>();
        var (logits, cache) = model.Forward(c.Tokens, useCache: true, logits: LogitsSelection.Last);
        for (int s = 0; s < GreedySteps; s++)
        {
            cachedRows.Add(logits.Last.ToArray());
            cached.Add(logits.ArgMax(0));
            if (s + 1 < GreedySteps) (logits, cache) = model.Forward([cached[^1]], cache, useCache: true, logits: LogitsSelection.Last);
        }

        // Without: one full causal pass over the prompt and those tokens; its row at a step's position is what an uncached
        // forward of the sequence up to there gives, so its argmax is the uncached greedy choice.
        var sequence = c.Tokens.Concat(cached).ToArray();
        var full = model.Forward(sequence);
        var uncached = new List<int>();
        double cacheDiff = 0;
        for (int s = 0; s < GreedySteps; s++)
        {
            var row = full[c.Tokens.Length - 1 + s];
            for (int j = 0; j < row.Length; j++) cacheDiff = Math.Max(cacheDiff, Math.Abs(row[j] - cachedRows[s][j]));
            uncached.Add(full.ArgMax(c.Tokens.Length - 1 + s));
        }
        // The reference over the prompt and our tokens: each of ours must be its argmax at the step before.
        var reference = ReferenceForward.Logits(c.Reference, sequence);
        var steps = reference.Skip(c.Tokens.Length - 1).Take(GreedySteps).ToArray();
        output.WriteLine($"{c}: greedy {string.Join(',', cached)}; cached vs uncached logits max abs {cacheDiff:G3}; against the reference: "
            + $"cached {LogitError.MaxAbs(cachedRows, steps):G3}, uncached {LogitError.MaxAbs(Enumerable.Range(0, GreedySteps).Select(s => full[c.Tokens.Length - 1 + s].ToArray()).ToArray(), steps):G3}");
        for (int s = 0; s < GreedySteps; s++)
        {
            var row = reference[c.Tokens.Length - 1 + s];
            int expected = ReferenceForward.ArgMax(row);
            Assert.True(expected == cached[s],
                $"{c}: step {s}: we chose {cached[s]} (reference logit {row[cached[s]]:G6}), the reference {expected} ({row[expected]:G6})");
        }

        // Cached decoding is the uncached pass, one row at a time: the same tokens. The logits agree to float rounding
        // only until that rounding moves an activation across a quantization step's midpoint (activations are quantized
        // per token to int8, as llama.cpp does); one such step changes a product by d_a·|w|, so the two passes may differ
        // by up to the quantization's own effect, which llama.cpp's error on the same file measures.
        Assert.Equal(uncached, cached);
        Assert.True(cacheDiff <= 2 * c.LlamaError, $"{c}: cached and uncached logits differ by {cacheDiff:G3}, over twice llama.cpp's error {c.LlamaError:G3}");
    }
}
