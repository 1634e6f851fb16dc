using System.Diagnostics;
using System.Text.Json.Nodes;
using Json.Schema;
using Qwen2.Native.Generation;
using Qwen2.Native.Serving;
using Qwen2.Native.Structured;
using Xunit.Abstractions;

namespace Qwen2.Native.Tests.Structured;

/// <summary>
/// Constrained output on a random-weight checkpoint with the real Qwen2.5 vocabulary, for generated schemas no test
/// wrote by hand, at several temperatures and seeds: every output parses, JsonSchema.Net (a validator this project did
/// not write) finds it valid, and every generation ended because its value was complete.
/// </summary>
public class ConstrainedGenerationPropertyTests(TinyChatModel fixture, ITestOutputHelper output) : IClassFixture<TinyChatModel>
{
    private const int Schemas = 200;

    // Tight bounds keep a random model's strings and arrays short, so 200 schemas run in seconds.
    private static readonly JsonLimits Limits = new() { MaxStringLength = 8, MaxItems = 3, MaxAdditionalProperties = 2, MaxKeyLength = 6, MaxDepth = 5 };

    [Fact]
    public async Task GeneratedSchemasGiveValidOutputThatEndsByCompletion()
    {
        var m = fixture;
        var schemas = new RandomSchemas(seed: 2024);
        var prompt = m.Tokenizer.Encode("Answer in JSON.");
        // Every schema at three temperatures, each draw with its own seed, and the sampler's other settings mixed in.
        var runs = new (double Temperature, int TopK, double TopP, double MinP, double Penalty)[] { (0, 0, 1, 0, 1), (0.7, 50, 0.9, 0, 1.1), (1.5, 1000, 1, 0.001, 1) };
        var clock = Stopwatch.StartNew();
        // The batch generator (the server's path) runs them 32 at a time: one pass over the weights per step.
        using var generator = new BatchGenerator(m.Pipeline, new BatchGeneratorOptions { MaxBatchSize = 32 });
        var jobs = new List<(int Schema, string Json, JsonSchema Validator, double T, ulong Seed, GenerationRequest Request)>();
        int bounded = 0;
        for (int i = 0; i < Schemas; i++)
        {
            var schemaJson = schemas.Next().ToJsonString();
            if (schemaJson.Contains("imum\":", StringComparison.Ordinal)) bounded++;
            var format = ResponseFormat.JsonSchema(schemaJson, Limits);
            var validator = JsonSchema.FromText(schemaJson);
            for (int r = 0; r < runs.Length; r++)
            {
                var (t, k, p, minP, penalty) = runs[r];
                ulong seed = (ulong)(i * runs.Length + r);
                var options = new GenerationOptions
                {
                    ResponseFormat = format, MaxNewTokens = 400, StopTokenIds = m.Pipeline.TextStopTokenIds,
                    Sampling = new SamplingOptions { Temperature = t, Seed = seed, TopK = k, TopP = p, MinP = minP, RepetitionPenalty = penalty },
                };
                jobs.Add((i, schemaJson, validator, t, seed, generator.Submit(prompt, options)));
            }
        }
        generator.RunToCompletion();
        int valid = 0, completed = 0, tokens = 0;
        var failures = new List<string>();
        foreach (var (i, schemaJson, validator, t, seed, request) in jobs)
        {
            var stats = await request.Completion;
            tokens += stats.GeneratedTokens;
            string text = m.Tokenizer.Decode(request.Generated.ToArray(), skipSpecialTokens: true);
            bool ended = stats.StopReason == StopReason.EndOfSequence;
            if (ended) completed++;
            string? problem = null;
            try
            {
                var result = validator.Evaluate(JsonNode.Parse(text), new EvaluationOptions { OutputFormat = OutputFormat.List });
                if (result.IsValid) valid++;
                else problem = string.Join("; ", result.Details.Where(d => d.HasErrors).SelectMany(d => d.Errors!.Select(e => $"{d.InstanceLocation}: {e.Value}")));
            }
            catch (System.Text.Json.JsonException e) { problem = $"does not parse: {e.Message}"; }
            if (problem is not null || !ended)
                failures.Add($"schema {i} {schemaJson}\n  t={t} seed={seed}: {text}\n  {problem ?? "ended by " + stats.StopReason}");
        }
        int total = jobs.Count;
        output.WriteLine($"{Schemas} schemas ({bounded} with number bounds) x {runs.Length} temperatures = {total} generations (each its own seed), {tokens} tokens, {clock.Elapsed.TotalSeconds:F1} s: {valid} valid ({100.0 * valid / total:F1}%), {completed} ended by completion ({100.0 * completed / total:F1}%)");
        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(5)) + $"\n({failures.Count} failures of {total})");
        Assert.Equal(total, valid);
        Assert.Equal(total, completed);
        Assert.True(bounded >= Schemas / 4, $"only {bounded} schemas have number bounds");
    }

    [Fact]
    public void JsonObjectModeAlwaysGivesAnObject()
    {
        var m = fixture;
        var session = new InferenceSession(m.Model); // TextGeneration hands it the tokenizer
        var format = ResponseFormat.ForJsonObject(Limits);
        for (ulong seed = 0; seed < 12; seed++)
        {
            var options = new GenerationOptions { ResponseFormat = format, MaxNewTokens = 400, Sampling = new SamplingOptions { Temperature = seed < 2 ? 0 : 1.5, Seed = seed } };
            session.Reset();
            string text = string.Concat(session.GenerateText(m.Tokenizer, m.Tokenizer.Encode("{"), options));
            Assert.Equal(StopReason.EndOfSequence, session.LastStats!.StopReason);
            Assert.IsType<JsonObject>(JsonNode.Parse(text));
        }
    }
}
