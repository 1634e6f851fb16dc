using Microsoft.Extensions.AI;
using Qwen2.Native.Generation;

namespace Qwen2.Native.Embeddings;

/// <summary>
/// <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/> (Microsoft.Extensions.AI) over a <see cref="Qwen2Pipeline"/>
/// holding an embedding model such as Qwen3-Embedding: each text is tokenized as Hugging Face's tokenizer does by
/// default (with the special tokens its post-processor adds: Qwen3-Embedding appends <c>&lt;|endoftext|&gt;</c>), run
/// through the model without the lm_head, and its last token's final-normed hidden state, L2-normalised, is the
/// embedding: what sentence-transformers' Transformer, Pooling (lasttoken) and Normalize modules compute.
/// </summary>
/// <remarks>
/// <para>
/// Texts are batched: as many as fit <see cref="BatchTokens"/> go through each weight matrix together in one forward
/// call (<see cref="Qwen2Model.HiddenStatesBatchInto"/>), each attending only to its own tokens; no KV cache is kept.
/// A text longer than that runs alone, in chunks of <see cref="BatchTokens"/> through a cache of its length. A text
/// longer than the model's context (max_position_embeddings) is refused, not truncated.
/// </para>
/// <para>
/// <see cref="EmbeddingGenerationOptions.Dimensions"/> truncates each vector to its first dimensions and normalises it
/// again (Matryoshka representation, which Qwen3-Embedding is trained for, as vLLM applies <c>dimensions</c>).
/// <see cref="EmbeddingGenerationOptions.AdditionalProperties"/> may carry <c>"prompt_name"</c> (a key of
/// <see cref="Prompts"/>, such as Qwen3-Embedding's <c>"query"</c>) or <c>"prompt"</c> (text), put before every input
/// as sentence-transformers' <c>encode(prompt_name=…, prompt=…)</c> does; <see cref="FormatQuery"/> writes the
/// instruction format of Qwen3-Embedding's model card.
/// </para>
/// <para>Thread safety: calls may run concurrently; they share the model, as concurrent forward calls may. The pipeline is not disposed with the generator.</para>
/// </remarks>
public sealed class Qwen2EmbeddingGenerator : IEmbeddingGenerator<string, Embedding<float>>
{
    /// <summary>The provider name in <see cref="EmbeddingGeneratorMetadata"/>.</summary>
    public const string ProviderName = "Qwen2Managed";

    private readonly Qwen2Pipeline _pipeline;
    private readonly EmbeddingGeneratorMetadata _metadata;

    /// <summary>Creates a generator.</summary>
    /// <param name="pipeline">The model and tokenizer (not owned: the caller disposes the pipeline after the generator).</param>
    /// <param name="batchTokens">Most tokens in one forward call (at least 1; 2048 by default).</param>
    /// <param name="modelId">The model id in the metadata and in each embedding; null: the checkpoint's directory or file name.</param>
    public Qwen2EmbeddingGenerator(Qwen2Pipeline pipeline, int batchTokens = 2048, string? modelId = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchTokens, 1);
        _pipeline = pipeline;
        BatchTokens = batchTokens;
        ModelId = modelId ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(pipeline.Model.Directory));
        _metadata = new EmbeddingGeneratorMetadata(ProviderName, null, ModelId, pipeline.Model.Config.HiddenSize);
    }

    /// <summary>Most tokens one forward call runs.</summary>
    public int BatchTokens { get; }

    /// <summary>The model id the embeddings carry.</summary>
    public string ModelId { get; }

    /// <summary>Length of a full embedding: the model's hidden size.</summary>
    public int Dimensions => _pipeline.Model.Config.HiddenSize;

    /// <summary>Longest input in tokens (special tokens included): the model's max_position_embeddings.</summary>
    public int MaxInputTokens => _pipeline.Model.Config.MaxPositionEmbeddings;

    /// <summary>The named prompts of the checkpoint's <c>config_sentence_transformers.json</c> (Qwen3-Embedding: "query" and "document"); empty for GGUF.</summary>
    public IReadOnlyDictionary<string, string> Prompts => _pipeline.Model.SentenceTransformers.Prompts;

    /// <summary>A query in the instruction format of Qwen3-Embedding's model card: <c>Instruct: {task}\nQuery:{query}</c> (documents take no instruction).</summary>
    /// <param name="task">One sentence describing the retrieval task, e.g. "Given a web search query, retrieve relevant passages that answer the query".</param>
    /// <param name="query">The query text.</param>
    public static string FormatQuery(string task, string query)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(query);
        return $"Instruct: {task}\nQuery:{query}";
    }

    /// <summary>The ids a text is embedded from: <see cref="Text.Qwen2Tokenizer.Encode(string, bool)"/> with the special tokens.</summary>
    public int[] Tokenize(string text) => _pipeline.Tokenizer.Encode(text, addSpecialTokens: true);

    /// <inheritdoc />
    /// <exception cref="ArgumentException">An input is empty or longer than <see cref="MaxInputTokens"/>, the dimensions are out of range, or a prompt option is unknown; the message names the input or option.</exception>
    public async Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        string prompt = Prompt(options);
        var ids = values.Select((v, i) => v is null ? throw new ArgumentException($"input {i} is null", nameof(values)) : Tokenize(prompt + v)).ToArray();
        int? dimensions = options?.Dimensions;
        var vectors = await Task.Run(() => Embed(ids, dimensions, cancellationToken), cancellationToken).ConfigureAwait(false);
        var created = DateTimeOffset.UtcNow;
        long tokens = ids.Sum(i => (long)i.Length);
        var result = new GeneratedEmbeddings<Embedding<float>>(vectors.Select(v => new Embedding<float>(v) { ModelId = ModelId, CreatedAt = created }))
        {
            Usage = new UsageDetails { InputTokenCount = tokens, TotalTokenCount = tokens },
        };
        return result;
    }

    /// <summary>
    /// The embeddings of already tokenized inputs (special tokens included, as <see cref="Tokenize"/> gives them), in
    /// order: each the last token's final-normed hidden state, truncated to <paramref name="dimensions"/> and L2-normalised.
    /// </summary>
    /// <param name="inputs">Token ids per input, each in [0, vocab_size); each input 1 to <see cref="MaxInputTokens"/> tokens.</param>
    /// <param name="dimensions">Length of each vector, 1 to <see cref="Dimensions"/>; null for all.</param>
    /// <param name="cancellationToken">Checked between forward calls.</param>
    /// <exception cref="ArgumentException">An input is empty or too long, or <paramref name="dimensions"/> is out of range; the message names the input.</exception>
    public float[][] Embed(IReadOnlyList<int[]> inputs, int? dimensions = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var model = _pipeline.Model;
        int hidden = model.Config.HiddenSize, width = dimensions ?? hidden;
        if (width < 1 || width > hidden)
            throw new ArgumentOutOfRangeException(nameof(dimensions), dimensions, $"dimensions must be from 1 to {hidden}, this model's embedding size");
        for (int i = 0; i < inputs.Count; i++)
        {
            if (inputs[i] is not { Length: > 0 }) throw new ArgumentException($"input {i} has no tokens; an embedding needs at least one", nameof(inputs));
            if (inputs[i].Length > MaxInputTokens)
                throw new ArgumentException($"input {i} is {inputs[i].Length} tokens; this model takes at most {MaxInputTokens} (max_position_embeddings)", nameof(inputs));
        }

        var result = new float[inputs.Count][];
        var states = new float[hidden];
        int next = 0;
        while (next < inputs.Count)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (inputs[next].Length > BatchTokens)
            {
                result[next] = Pool(EmbedLong(inputs[next], cancellationToken), width);
                next++;
                continue;
            }
            // As many whole inputs as fit the token budget, in order.
            int first = next, tokens = 0;
            while (next < inputs.Count && inputs[next].Length <= BatchTokens - tokens) tokens += inputs[next++].Length;
            var batch = new BatchInput[next - first];
            for (int i = 0; i < batch.Length; i++) batch[i] = new BatchInput(inputs[first + i], null, LogitsSelection.Last);
            if (states.Length < batch.Length * hidden) states = new float[batch.Length * hidden];
            model.HiddenStatesBatchInto(batch, states);
            for (int i = 0; i < batch.Length; i++) result[first + i] = Pool(states.AsSpan(i * hidden, hidden), width);
        }
        return result;
    }

    /// <summary>A text longer than one batch: its chunks in turn through a cache of its length; the last chunk's last row.</summary>
    private float[] EmbedLong(int[] ids, CancellationToken cancellationToken)
    {
        var model = _pipeline.Model;
        var cache = model.CreateCache(ids.Length);
        float[] last = [];
        for (int start = 0; start < ids.Length; start += BatchTokens)
        {
            cancellationToken.ThrowIfCancellationRequested();
            last = model.HiddenStates(ids.AsSpan(start, Math.Min(BatchTokens, ids.Length - start)), cache, LogitsSelection.Last);
        }
        return last;
    }

    /// <summary>The first <paramref name="width"/> values of the pooled hidden state, divided by their L2 norm (summed in double).</summary>
    private static float[] Pool(ReadOnlySpan<float> state, int width)
    {
        var v = state[..width].ToArray();
        double sum = 0;
        foreach (float x in v) sum += (double)x * x;
        // As torch.nn.functional.normalize: the norm is clamped to 1e-12, so a zero vector stays zero.
        double scale = 1 / Math.Max(Math.Sqrt(sum), 1e-12);
        for (int i = 0; i < v.Length; i++) v[i] = (float)(v[i] * scale);
        return v;
    }

    private string Prompt(EmbeddingGenerationOptions? options)
    {
        if (options?.AdditionalProperties is not { } extra) return "";
        bool hasName = extra.TryGetValue("prompt_name", out var name) && name is not null;
        bool hasText = extra.TryGetValue("prompt", out var text) && text is not null;
        if (hasName && hasText) throw new ArgumentException("give prompt_name or prompt, not both", nameof(options));
        if (hasText) return text as string ?? throw new ArgumentException($"prompt is a {text!.GetType().Name}; it must be a string", nameof(options));
        if (!hasName) return "";
        if (name is not string key) throw new ArgumentException($"prompt_name is a {name!.GetType().Name}; it must be a string", nameof(options));
        return Prompts.TryGetValue(key, out var p) ? p
            : throw new ArgumentException($"prompt_name \"{key}\" is not one of this model's prompts ({(Prompts.Count == 0 ? "it has none" : string.Join(", ", Prompts.Keys))})", nameof(options));
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(EmbeddingGeneratorMetadata)) return _metadata;
        if (serviceType.IsInstanceOfType(this)) return this;
        if (serviceType == typeof(Qwen2Pipeline)) return _pipeline;
        if (serviceType == typeof(Qwen2Model)) return _pipeline.Model;
        return null;
    }

    /// <summary>Does nothing: the pipeline belongs to the caller.</summary>
    public void Dispose()
    {
    }
}
