using System.Text;
using Qwen2.Native.Generation;
using Qwen2.Native.Text;

namespace Qwen2.Native.Chat;

/// <summary>
/// A multi-turn conversation over one KV cache: each turn appends only its new tokens (the user message and the
/// template's markup) to what the cache holds, so nothing said earlier is computed again. Not thread-safe.
/// </summary>
/// <remarks>
/// The cache keeps the assistant's replies as generated, tokens and all. A template that rewrites history (Qwen3 drops
/// earlier reasoning) would see a different context if the conversation were rendered again from scratch; this session,
/// like llama.cpp's, keeps what was generated.
/// </remarks>
public sealed class ChatSession
{
    private readonly List<ChatMessage> _history = new();
    private readonly int? _imEnd;

    /// <summary>Starts a conversation over a pipeline's model, tokenizer, chat template and generation defaults.</summary>
    /// <exception cref="NotSupportedException">No template was given and the tokenizer's chat_template is missing or not ChatML.</exception>
    public ChatSession(Qwen2Pipeline pipeline, ChatSessionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        Options = options ?? new ChatSessionOptions();
        Pipeline = pipeline;
        Template = Options.Template ?? pipeline.ChatTemplate;
        Session = new InferenceSession(pipeline.Model, Options.Session);
        _imEnd = pipeline.Tokenizer.TokenToId("<|im_end|>");
    }

    /// <summary>The model, tokenizer and defaults the conversation runs on.</summary>
    public Qwen2Pipeline Pipeline { get; }

    /// <summary>The options.</summary>
    public ChatSessionOptions Options { get; }

    /// <summary>The tokenizer.</summary>
    public Qwen2Tokenizer Tokenizer => Pipeline.Tokenizer;

    /// <summary>The chat template.</summary>
    public ChatTemplate Template { get; }

    /// <summary>The token-level session (its cache, tokens and latest stats).</summary>
    public InferenceSession Session { get; }

    /// <summary>The conversation so far (the system message only when one was given).</summary>
    public IReadOnlyList<ChatMessage> History => _history;

    /// <summary>Counts and timings of the latest reply.</summary>
    public GenerationStats? LastStats => Session.LastStats;

    /// <summary>
    /// Sends a user message and streams the reply. The reply joins <see cref="History"/> when the stream ends, also when
    /// it ends early (cancelled or abandoned): the cache holds it, so the history does too. Options null: the
    /// pipeline's <see cref="Qwen2Pipeline.DefaultOptions"/> (generation_config.json's).
    /// </summary>
    public IEnumerable<string> Send(string userMessage, GenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        Start(userMessage, options, cancellationToken, out _);

    /// <summary>
    /// <see cref="Send"/>, with the reply's reasoning apart from its answer: a Qwen3 template's <c>&lt;think&gt;</c> block
    /// comes out as <see cref="ReasoningDelta.Reasoning"/>, never in <see cref="ReasoningDelta.Content"/>, however the
    /// tokens split its tags (other templates give only content). <see cref="History"/> keeps the reply as the model
    /// wrote it, tags included, as the template expects it back.
    /// </summary>
    public IEnumerable<ReasoningDelta> SendParts(string userMessage, GenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        var pieces = Start(userMessage, options, cancellationToken, out string prompt);
        return Split(pieces, Template.ReasoningSplitterFor(prompt));
    }

    private static IEnumerable<ReasoningDelta> Split(IEnumerable<string> pieces, ReasoningSplitter? splitter)
    {
        foreach (var p in pieces)
        {
            var d = splitter?.Push(p) ?? new ReasoningDelta("", p);
            if (!d.IsEmpty) yield return d;
        }
        if (splitter?.Flush() is { IsEmpty: false } rest) yield return rest;
    }

    private IEnumerable<string> Start(string userMessage, GenerationOptions? options, CancellationToken cancellationToken, out string text)
    {
        ArgumentNullException.ThrowIfNull(userMessage);
        options ??= Pipeline.DefaultOptions;
        var user = ChatMessage.User(userMessage);
        if (Session.Tokens.Count == 0)
        {
            var messages = new List<ChatMessage>();
            if (Options.SystemPrompt is { } sys) messages.Add(ChatMessage.System(sys));
            messages.Add(user);
            text = Template.Render(messages, addGenerationPrompt: true, Options.EnableThinking);
        }
        else
        {
            bool closed = _imEnd is int end && Session.Tokens[^1] == end;
            text = Template.RenderContinuation(user, closed, Options.EnableThinking);
        }
        var pieces = Session.GenerateText(Tokenizer, Tokenizer.Encode(text), options, cancellationToken); // validates before the history changes
        if (_history.Count == 0 && Options.SystemPrompt is { } system) _history.Add(ChatMessage.System(system));
        _history.Add(user);
        return Collect(pieces);
    }

    /// <summary>The streaming form of <see cref="Send"/>; each step runs on the thread pool.</summary>
    public IAsyncEnumerable<string> SendAsync(string userMessage, GenerationOptions? options = null, CancellationToken cancellationToken = default) =>
        TextGeneration.ToAsync(Send(userMessage, options, cancellationToken), cancellationToken);

    private IEnumerable<string> Collect(IEnumerable<string> pieces)
    {
        var reply = new StringBuilder();
        try
        {
            foreach (var p in pieces)
            {
                reply.Append(p);
                yield return p;
            }
        }
        finally
        {
            _history.Add(ChatMessage.Assistant(reply.ToString()));
        }
    }

    /// <summary>Forgets the conversation and empties the cache.</summary>
    public void Reset()
    {
        _history.Clear();
        Session.Reset();
    }
}
