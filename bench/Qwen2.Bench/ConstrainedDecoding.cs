using BenchmarkDotNet.Attributes;
using Qwen2.Native;
using Qwen2.Native.Generation;
using Qwen2.Native.Structured;
using Qwen2.Native.Text;

namespace Qwen2.Bench;

/// <summary>
/// What JSON-constrained decoding adds to a decode step: <see cref="Check"/> is the matcher's test of a sampled token
/// (and its advance past it), paid on every token; <see cref="MaskAndCheck"/> adds the mask of the whole 151,936-token
/// vocabulary, paid only when the sampled token is rejected. Both replay a recorded answer (the Qwen2.5 tokenization of a
/// JSON value for the schema below) token by token, so one operation is one token, averaged over its positions:
/// structure, keys, strings, numbers. <see cref="DecodeStep"/> is the plain decode step of the same checkpoint (64
/// tokens of context, 2 threads) the cost is compared with.
/// </summary>
[MemoryDiagnoser]
[WarmupCount(3), IterationCount(10)]
public class ConstrainedDecoding
{
    private const string Schema = """
        {"type":"object","properties":{
          "name":{"type":"string"},"age":{"type":"integer"},"email":{"type":"string","maxLength":64},
          "languages":{"type":"array","items":{"type":"string"},"maxItems":8},
          "address":{"type":"object","properties":{"street":{"type":"string"},"city":{"type":"string"},"zip":{"type":"string"}},"required":["city"]},
          "status":{"enum":["active","retired","unknown"]},"score":{"type":"number"},"notes":{"anyOf":[{"type":"string"},{"type":"null"}]}},
         "required":["name","age","languages","address","status"]}
        """;

    private const string Answer = """{"name": "Ada Lovelace", "age": 36, "email": "ada@example.org", "languages": ["English", "French", "Italian"], "address": {"street": "12 St James's Square", "city": "London", "zip": "SW1Y 4JH"}, "status": "retired", "score": 97.25, "notes": "First published algorithm, 1843; translated Menabrea's article on the Analytical Engine."}""";

    /// <summary>Tokens of the answer (checked at setup), one operation each.</summary>
    private const int AnswerTokens = 112;

    private Qwen2Model _model = null!;
    private Qwen2Tokenizer _tokenizer = null!;
    private InferenceSession _session = null!;
    private TokenVocabulary _vocab = null!;
    private ResponseFormat _format = null!;
    private int[] _answer = null!;
    private int[] _stops = null!;
    private float[] _logits = null!, _masked = null!;

    /// <summary>The schema above, or any JSON object (json_object: free keys and values).</summary>
    [Params("schema", "json_object")]
    public string Format { get; set; } = "schema";

    /// <summary>Loads the Qwen2-0.5B-shaped checkpoint at 2 threads, runs a 64-token prompt, and tokenizes the answer.</summary>
    [GlobalSetup]
    public void Setup()
    {
        string dir = PeersModel.Checkpoint();
        _model = Qwen2Model.Load(dir, new ModelOptions { Threads = 2 });
        _tokenizer = Qwen2Tokenizer.Load(dir);
        _session = new InferenceSession(_model, new SessionOptions { CacheCapacity = 256 });
        int vocab = _model.Config.VocabSize;
        _session.Append(Enumerable.Range(0, 64).Select(t => (int)((t * 2654435761L + 17) % 150000)).ToArray());
        _session.Evaluate();
        _vocab = TokenVocabulary.For(_tokenizer, vocab);
        _format = Format == "schema" ? ResponseFormat.JsonSchema(Schema) : ResponseFormat.JsonObject;
        _answer = _tokenizer.Encode(Answer);
        if (_answer.Length != AnswerTokens) throw new InvalidOperationException($"the answer is {_answer.Length} tokens, not {AnswerTokens}");
        _stops = [_tokenizer.TokenToId("<|im_end|>")!.Value];
        var rng = new Random(1);
        _logits = Enumerable.Range(0, vocab).Select(_ => (float)rng.NextDouble() * 10).ToArray();
        _masked = new float[vocab];
        if (!ReplayWithMasks()) throw new InvalidOperationException("the recorded answer does not match the schema");
    }

    /// <summary>Releases the model.</summary>
    [GlobalCleanup]
    public void Cleanup() => _model.Dispose();

    /// <summary>One plain decode step: a token through the model at 64 tokens of context, then forgotten.</summary>
    [Benchmark(Baseline = true)]
    public float DecodeStep()
    {
        _session.Append([1234]);
        float first = _session.Evaluate()[0];
        _session.TruncateTo(_session.Tokens.Count - 1);
        return first;
    }

    /// <summary>The matcher's check of each sampled token of the answer, per token.</summary>
    [Benchmark(OperationsPerInvoke = AnswerTokens)]
    public bool Check()
    {
        bool ok = true;
        var c = new TokenConstraint(_format.Grammar!, _vocab, _stops);
        foreach (int t in _answer) ok &= c.TryAdvance(t);
        return ok;
    }

    /// <summary>A full-vocabulary mask before each token of the answer, then its check, per token.</summary>
    [Benchmark(OperationsPerInvoke = AnswerTokens)]
    public bool MaskAndCheck()
    {
        bool ok = true;
        var c = new TokenConstraint(_format.Grammar!, _vocab, _stops);
        foreach (int t in _answer)
        {
            c.Mask(_logits, _masked);
            ok &= c.TryAdvance(t);
        }
        return ok;
    }

    private bool ReplayWithMasks()
    {
        var c = new TokenConstraint(_format.Grammar!, _vocab, _stops);
        foreach (int t in _answer)
        {
            c.Mask(_logits, _masked);
            if (float.IsNegativeInfinity(_masked[t]) || !c.TryAdvance(t)) return false;
        }
        Console.WriteLine($"// answer: {_answer.Length} tokens, complete: {c.IsComplete}");
        return c.IsComplete;
    }
}
