using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text;
using Microsoft.Extensions.AI;
using Qwen2.Native.Generation;
using Qwen2.Native.Serving;
using Qwen2.Native.Structured;
using Qwen2.Native.Text;
using ChatMessage = Qwen2.Native.Text.ChatMessage;
using AIChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace Qwen2.Native.Chat;

/// <summary>
/// <see cref="IChatClient"/> (Microsoft.Extensions.AI) over a <see cref="Qwen2Pipeline"/> (a model and its tokenizer):
/// code written against the standard .NET chat abstraction runs on this engine unchanged.
/// </summary>
/// <remarks>
/// <para>
/// Stateless like other chat clients: each call renders the whole message list through the chat template. The KV cache
/// is still reused: the client keeps one <see cref="InferenceSession"/>, and a call whose prompt tokens start with the
/// tokens the session already holds (the previous conversation, typically extended by its reply and a new user message)
/// runs only the tokens after the longest common prefix. <see cref="UsageDetails.CachedInputTokenCount"/> reports how
/// many prompt tokens came from the cache. A reply is re-encoded from its text, so where the model produced a
/// non-canonical token split the reuse stops at that point; the result is the same either way.
/// </para>
/// <para>
/// <see cref="ChatOptions"/>: <see cref="ChatOptions.Temperature"/> (0 is greedy), <see cref="ChatOptions.TopP"/>,
/// <see cref="ChatOptions.TopK"/>, <see cref="ChatOptions.MaxOutputTokens"/>, <see cref="ChatOptions.Seed"/> and
/// <see cref="ChatOptions.StopSequences"/> map onto <see cref="GenerationOptions"/>; <see cref="ChatOptions.Instructions"/>
/// is put at the start of the system message; <see cref="ChatOptions.AdditionalProperties"/> may carry <c>"min_p"</c> and
/// <c>"repetition_penalty"</c> (numbers). Unset options keep the client's defaults (the checkpoint's
/// generation_config.json unless the constructor was given others). As other Microsoft.Extensions.AI clients do with
/// settings their backend lacks, <see cref="ChatOptions.FrequencyPenalty"/>, <see cref="ChatOptions.PresencePenalty"/>,
/// <see cref="ChatOptions.Reasoning"/>, <see cref="ChatOptions.ModelId"/> and
/// <see cref="ChatOptions.ConversationId"/> are ignored. Non-text content throws <see cref="NotSupportedException"/>.
/// </para>
/// <para>
/// Tools: <see cref="ChatOptions.Tools"/> (functions: <see cref="AIFunctionDeclaration"/>, <see cref="AIFunction"/>)
/// are written into the prompt as Qwen2.5's and Qwen3's templates write them, with <see cref="ChatToolMode.Auto"/>
/// (the default); <see cref="ChatToolMode.None"/> leaves them out. The reply's <c>&lt;tool_call&gt;</c> blocks come
/// out as <see cref="FunctionCallContent"/> (arguments as <see cref="JsonElement"/> values, a fresh <c>call_…</c> id),
/// held until complete however the tokens split them, with <see cref="ChatFinishReason.ToolCalls"/>; a malformed block
/// comes out as an <see cref="ErrorContent"/> holding its text. <see cref="FunctionCallContent"/> and
/// <see cref="FunctionResultContent"/> in the messages are written back as the template's calls and
/// <c>&lt;tool_response&gt;</c> blocks, so <c>ChatClientBuilder.UseFunctionInvocation()</c> runs the tool loop. A forced
/// call (<see cref="ChatToolMode.RequireAny"/>, <c>RequireSpecific</c>) opens the block in the prompt and constrains
/// the output to a call whose arguments are valid for the function's parameter schema.
/// </para>
/// <para>
/// <see cref="ChatOptions.ResponseFormat"/>: <see cref="ChatResponseFormat.Json"/> constrains the reply to a JSON object,
/// and <c>ChatResponseFormat.ForJsonSchema</c> to JSON valid for the schema (the subset <see cref="ResponseFormat"/>
/// documents; another keyword throws <see cref="JsonSchemaException"/>), so <c>GetResponseAsync&lt;T&gt;()</c> returns
/// typed objects.
/// </para>
/// <para>
/// Made from a running <see cref="BatchGenerator"/> instead, the client keeps no session: each call is a request of
/// the generator, calls run concurrently and are batched with each other and with the generator's other requests,
/// and the earlier turns of a conversation (or a system prompt shared by many conversations) come from the
/// generator's prefix cache when its options turn <see cref="BatchGeneratorOptions.CachePrefixes"/> on.
/// </para>
/// <para>
/// Thread safety: calls on a client made from a pipeline run one at a time (a <see cref="SemaphoreSlim"/> queues them), since they share
/// the session and its cache; a streaming call holds the client until its enumeration ends or is disposed. Use one
/// client per concurrent conversation; clients may share a pipeline. The pipeline (model and tokenizer) is not disposed
/// with the client.
/// </para>
/// </remarks>
public sealed class Qwen2ChatClient : IChatClient
{
    /// <summary>The provider name in <see cref="ChatClientMetadata"/>.</summary>
    public const string ProviderName = "Qwen2Managed";

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly InferenceSession? _session;
    private readonly BatchGenerator? _generator;
    private readonly ChatClientMetadata _metadata;
    private bool _disposed;

    /// <summary>Creates a client.</summary>
    /// <param name="pipeline">The model, tokenizer and defaults (not owned: the caller disposes the pipeline after the client).</param>
    /// <param name="template">The chat template; null: the pipeline's (the tokenizer's tokenizer_config.json).</param>
    /// <param name="defaultOptions">Sampling and stopping used where <see cref="ChatOptions"/> says nothing; null: the pipeline's <see cref="Qwen2Pipeline.DefaultOptions"/> (the checkpoint's generation_config.json).</param>
    /// <param name="session">Cache size and behaviour of the client's session.</param>
    /// <exception cref="NotSupportedException">No template was given and the tokenizer's chat_template is missing or not ChatML.</exception>
    public Qwen2ChatClient(Qwen2Pipeline pipeline, ChatTemplate? template = null, GenerationOptions? defaultOptions = null, SessionOptions? session = null)
        : this(pipeline, template, defaultOptions, session, withSession: true)
    {
    }

    /// <summary>
    /// Creates a client whose calls run as requests of <paramref name="generator"/>: concurrently, batched, and with
    /// the generator's prefix cache (see the remarks). The generator stays with its owner.
    /// </summary>
    /// <param name="generator">A generator made from a <see cref="Qwen2Pipeline"/> and started (<see cref="BatchGenerator.Start"/>).</param>
    /// <param name="template">The chat template; null: the pipeline's.</param>
    /// <param name="defaultOptions">Sampling and stopping used where <see cref="ChatOptions"/> says nothing; null: the pipeline's defaults.</param>
    /// <exception cref="ArgumentException">The generator was made from a model alone (it has no tokenizer) or has not been started.</exception>
    /// <exception cref="NotSupportedException">No template was given and the tokenizer's chat_template is missing or not ChatML.</exception>
    public Qwen2ChatClient(BatchGenerator generator, ChatTemplate? template = null, GenerationOptions? defaultOptions = null)
        : this(PipelineOf(generator), template, defaultOptions, session: null, withSession: false)
    {
        _generator = generator;
    }

    private Qwen2ChatClient(Qwen2Pipeline pipeline, ChatTemplate? template, GenerationOptions? defaultOptions, SessionOptions? session, bool withSession)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        defaultOptions?.Validate();
        Pipeline = pipeline;
        Template = template ?? pipeline.ChatTemplate;
        DefaultOptions = defaultOptions ?? pipeline.DefaultOptions;
        if (withSession) _session = new InferenceSession(pipeline.Model, session);
        _metadata = new ChatClientMetadata(ProviderName, providerUri: null, defaultModelId: ModelId(pipeline.Model.Directory));
    }

    private static Qwen2Pipeline PipelineOf(BatchGenerator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        if (generator.Pipeline is null) throw new ArgumentException("the generator was made from a model alone; make it from a Qwen2Pipeline so the client has a tokenizer", nameof(generator));
        if (!generator.IsRunning) throw new ArgumentException("the generator is not running; call its Start() first (the client does not step it)", nameof(generator));
        return generator.Pipeline;
    }

    /// <summary>The model, tokenizer and defaults the client runs on.</summary>
    public Qwen2Pipeline Pipeline { get; }

    /// <summary>The model.</summary>
    public Qwen2Model Model => Pipeline.Model;

    /// <summary>The tokenizer.</summary>
    public Qwen2Tokenizer Tokenizer => Pipeline.Tokenizer;

    /// <summary>The chat template.</summary>
    public ChatTemplate Template { get; }

    /// <summary>What a call does where its <see cref="ChatOptions"/> leave a setting unset.</summary>
    public GenerationOptions DefaultOptions { get; }

    /// <inheritdoc/>
    public Task<ChatResponse> GetResponseAsync(IEnumerable<AIChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    /// <inheritdoc/>
    /// <remarks>
    /// Updates carry the reply's text as it becomes complete; the last one carries the <see cref="ChatFinishReason"/>
    /// (<see cref="ChatFinishReason.Stop"/> at an end-of-turn token or a stop sequence, <see cref="ChatFinishReason.Length"/>
    /// at <see cref="ChatOptions.MaxOutputTokens"/> or a full cache) and a <see cref="UsageContent"/>: prompt tokens,
    /// how many of them came from the cache, and generated tokens (the end-of-turn token included). Cancellation stops
    /// generation between two tokens and throws <see cref="OperationCanceledException"/>; the client stays usable.
    /// </remarks>
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AIChatMessage> messages, ChatOptions? options = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var generation = Map(options);
        var tools = ChatClientMessages.ToolDefinitions(options, Template);
        var forced = ChatClientMessages.ForcedTools(options, tools);
        string text = Template.Render(ChatClientMessages.ToTemplateMessages(messages, options?.Instructions), addGenerationPrompt: true, EnableThinking(options), tools);
        // A forced call: the prompt opens the block and the arguments are constrained to the function's parameters.
        if (forced is not null) (text, generation) = (text + ToolCallSchema.PromptSuffix, generation with { ResponseFormat = ToolCallSchema.For(forced) });
        int[] prompt = Tokenizer.Encode(text);
        // Qwen3 thinks before it answers: the reasoning comes out as TextReasoningContent, never inside the answer's text;
        // with tools, <tool_call> blocks come out as FunctionCallContent.
        var reasoning = new ReplyContents(forced is null ? Template.ReasoningSplitterFor(text) : null, tools is null ? null : new ToolCallParser(insideCall: forced is not null));
        if (_generator is not null)
        {
            await foreach (var u in RunBatchedAsync(prompt, generation, reasoning, cancellationToken).ConfigureAwait(false)) yield return u;
            yield break;
        }
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _session!.TruncateTo(CommonPrefix(_session.Tokens, prompt));
            var pieces = _session.GenerateText(Tokenizer, prompt[_session.Tokens.Count..], generation, cancellationToken);
            string responseId = Guid.NewGuid().ToString("N");
            var created = DateTimeOffset.UtcNow;
            // Each step runs on the thread pool, so the caller's thread is never blocked by the model.
            await foreach (var piece in TextGeneration.ToAsync(pieces, cancellationToken).ConfigureAwait(false))
                if (reasoning.Push(piece) is { } update) yield return Update(update, responseId, created);
            if (reasoning.Flush() is { } rest) yield return Update(rest, responseId, created);
            var stats = _session.LastStats!;
            yield return Update(Last(prompt.Length, prompt.Length - stats.PromptTokens, stats.GeneratedTokens, stats.StopReason, reasoning.SawCall), responseId, created);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>One call as a request of the generator: its tokens decoded and cut at stop strings here, as the session path does.</summary>
    private async IAsyncEnumerable<ChatResponseUpdate> RunBatchedAsync(int[] prompt, GenerationOptions generation, ReplyContents reasoning, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // The generator works on ids: stop strings are matched on the text here.
        var request = _generator!.Submit(prompt, generation with { StopStrings = [], StopTokenIds = generation.StopTokenIds ?? Pipeline.TextStopTokenIds }, cancellationToken);
        string responseId = Guid.NewGuid().ToString("N");
        var created = DateTimeOffset.UtcNow;
        var decoder = Tokenizer.CreateStreamingDecoder(generation.SkipSpecialTokens);
        var stops = new StopStringMatcher(generation.StopStrings);
        int generated = 0;
        bool hit = false;
        try
        {
            await foreach (int id in request.ReadTokensAsync(cancellationToken).ConfigureAwait(false))
            {
                generated++;
                var (ready, stopped) = stops.Push(decoder.AppendGenerated(id));
                if (reasoning.Push(ready) is { } update) yield return Update(update, responseId, created);
                if (stopped) { hit = true; break; }
            }
            if (!hit)
            {
                var (tail, stopped) = stops.Push(decoder.Flush());
                tail += stopped ? "" : stops.Drain();
                if (reasoning.Push(tail) is { } update) yield return Update(update, responseId, created);
                hit = stopped;
            }
            if (reasoning.Flush() is { } rest) yield return Update(rest, responseId, created);
            if (hit)
            {
                // The caller sees the end only once the generator has let the request go, its blocks back in the pool.
                request.Cancel();
                await request.Completion.ConfigureAwait(false);
            }
            var reason = hit ? StopReason.StopString : (await request.Completion.ConfigureAwait(false)).StopReason;
            if (reason == StopReason.Cancelled) throw new OperationCanceledException("the request was cancelled before it finished (the call's token, or the generator being disposed)", cancellationToken);
            yield return Update(Last(prompt.Length, request.SharedPromptTokens, generated, reason, reasoning.SawCall), responseId, created);
        }
        finally
        {
            // A stop string or an early end of the enumeration ends the request now rather than at its token limit.
            request.Cancel();
        }
    }

    /// <summary>
    /// Qwen3's switch, as its template names it: <c>ChatOptions.AdditionalProperties["enable_thinking"]</c> (what vLLM
    /// and llama.cpp take as <c>chat_template_kwargs</c>), true when absent.
    /// </summary>
    private static bool EnableThinking(ChatOptions? options)
    {
        if (options?.AdditionalProperties is not { } extra || !extra.TryGetValue("enable_thinking", out object? value) || value is null) return true;
        return value is bool b ? b : throw new ArgumentException($"ChatOptions.AdditionalProperties[\"enable_thinking\"] is {value.GetType().Name}; it must be a bool", nameof(options));
    }

    /// <summary>The update that ends a reply: its usage and why it ended (<see cref="ChatFinishReason.ToolCalls"/> when it called a function).</summary>
    private static ChatResponseUpdate Last(int promptTokens, int cachedTokens, int generated, StopReason reason, bool calledTools) =>
        new(ChatRole.Assistant, [new UsageContent(new UsageDetails
        {
            InputTokenCount = promptTokens,
            CachedInputTokenCount = cachedTokens,
            OutputTokenCount = generated,
            TotalTokenCount = promptTokens + generated,
        })])
        {
            FinishReason = reason is StopReason.MaxTokens or StopReason.ContextFull ? ChatFinishReason.Length
                : calledTools ? ChatFinishReason.ToolCalls : ChatFinishReason.Stop,
        };

    /// <inheritdoc/>
    /// <remarks>Answers <see cref="ChatClientMetadata"/> (provider "Qwen2Managed", model id the checkpoint's name), this client, the <see cref="Qwen2Pipeline"/>, the <see cref="Qwen2Model"/>, the <see cref="Qwen2Tokenizer"/> and, for a client made from one, the <see cref="BatchGenerator"/>.</remarks>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return _metadata;
        if (serviceType.IsInstanceOfType(this)) return this;
        if (serviceType.IsInstanceOfType(Pipeline)) return Pipeline;
        if (serviceType.IsInstanceOfType(Model)) return Model;
        if (serviceType.IsInstanceOfType(Tokenizer)) return Tokenizer;
        if (_generator is not null && serviceType.IsInstanceOfType(_generator)) return _generator;
        return null;
    }

    /// <summary>Releases the client's lock; the pipeline (model and tokenizer) stays with its owner.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _gate.Dispose();
    }

    private ChatResponseUpdate Update(ChatResponseUpdate u, string responseId, DateTimeOffset created)
    {
        u.ResponseId = responseId;
        u.MessageId = responseId;
        u.CreatedAt = created;
        u.ModelId = _metadata.DefaultModelId;
        return u;
    }

    /// <summary>The checkpoint's name: "Org/Name" for a Hugging Face hub snapshot, else the directory's name.</summary>
    internal static string ModelId(string directory)
    {
        var dir = new DirectoryInfo(Path.TrimEndingDirectorySeparator(directory));
        // models--Org--Name/snapshots/REV is how the hub cache lays out a download.
        if (dir.Parent is { Name: "snapshots", Parent: { } repo } && repo.Name.StartsWith("models--", StringComparison.Ordinal))
            return repo.Name["models--".Length..].Replace("--", "/", StringComparison.Ordinal);
        return dir.Name;
    }

    private static int CommonPrefix(IReadOnlyList<int> held, int[] prompt)
    {
        int n = Math.Min(held.Count, prompt.Length), i = 0;
        while (i < n && held[i] == prompt[i]) i++;
        return i;
    }

    /// <summary>The client's defaults with what <paramref name="options"/> sets.</summary>
    private GenerationOptions Map(ChatOptions? options)
    {
        if (options is null) return DefaultOptions;
        var s = DefaultOptions.Sampling;
        s = s with
        {
            Temperature = Widen(options.Temperature) ?? s.Temperature,
            TopP = Widen(options.TopP) ?? s.TopP,
            TopK = options.TopK ?? s.TopK,
            // ChatOptions.Seed is a long; any value is a valid seed, so negative ones keep their bits.
            Seed = options.Seed is long seed ? unchecked((ulong)seed) : s.Seed,
            MinP = Number(options, "min_p") ?? s.MinP,
            RepetitionPenalty = Number(options, "repetition_penalty") ?? s.RepetitionPenalty,
        };
        try
        {
            s.Validate();
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new ArgumentOutOfRangeException(nameof(options), e.ActualValue, $"ChatOptions ({e.ParamName}): {e.Message.Split(" (Parameter")[0]}");
        }
        if (options.MaxOutputTokens is < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxOutputTokens, "ChatOptions.MaxOutputTokens must be >= 0");
        if (options.StopSequences is { } stops && stops.Any(string.IsNullOrEmpty))
            throw new ArgumentException("ChatOptions.StopSequences: a stop sequence is null or empty", nameof(options));
        return DefaultOptions with
        {
            ResponseFormat = ChatClientMessages.ResponseFormatOf(options),
            Sampling = s,
            MaxNewTokens = options.MaxOutputTokens ?? DefaultOptions.MaxNewTokens,
            StopStrings = options.StopSequences is { Count: > 0 } list ? [.. DefaultOptions.StopStrings, .. list] : DefaultOptions.StopStrings,
        };
    }

    /// <summary>The double a float was written as (0.7f gives 0.7, not 0.699999988), so the sampler sees the value asked for.</summary>
    private static double? Widen(float? f) =>
        f is float v ? (float.IsFinite(v) ? double.Parse(v.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture) : v) : null;

    /// <summary>A number in <see cref="ChatOptions.AdditionalProperties"/>: a .NET number, numeric text, or a JSON number.</summary>
    private static double? Number(ChatOptions options, string key)
    {
        if (options.AdditionalProperties is not { } props || !props.TryGetValue(key, out object? raw) || raw is null) return null;
        if (raw is JsonElement { ValueKind: JsonValueKind.Number } json) return json.GetDouble();
        if (raw is string text && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double parsed)) return parsed;
        if (raw is byte or sbyte or short or ushort or int or uint or long or ulong or float or double or decimal)
            return Convert.ToDouble(raw, CultureInfo.InvariantCulture);
        throw new ArgumentException($"ChatOptions.AdditionalProperties[\"{key}\"] is {raw} ({raw.GetType().Name}); expected a number", nameof(options));
    }
}
