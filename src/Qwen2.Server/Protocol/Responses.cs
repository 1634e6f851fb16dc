using System.Text.Json.Serialization;

namespace Qwen2.Server.Protocol;

// The response bodies of the OpenAI API (and llama.cpp's /tokenize, /detokenize, /health), named in snake_case by
// ServerJsonContext. Nulls are left out, except finish_reason, which OpenAI always sends.

internal sealed record ErrorResponse(ErrorBody Error);

internal sealed record ErrorBody(string Message, string Type, int Code, string? Param);

internal sealed record HealthResponse(string Status);

internal sealed record ModelList(ModelCard[] Data)
{
    public string Object => "list";
}

internal sealed record ModelCard(string Id, long Created, string OwnedBy)
{
    public string Object => "model";
}

internal sealed record Usage(int PromptTokens, int CompletionTokens, int TotalTokens, PromptTokensDetails PromptTokensDetails);

internal sealed record PromptTokensDetails(int CachedTokens);

internal sealed record ChatCompletion(string Id, long Created, string Model, ChatChoice[] Choices, Usage Usage)
{
    public string Object => "chat.completion";
}

internal sealed record ChatChoice(int Index, ChatMessageBody Message, ChatLogprobs? Logprobs, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? FinishReason);

internal sealed record ChatMessageBody(string Role, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Content, string? ReasoningContent = null, ToolCallBody[]? ToolCalls = null);

/// <summary>A function call in a reply, as OpenAI returns it (arguments as JSON text).</summary>
internal sealed record ToolCallBody(string Id, string Type, FunctionCallBody Function);

internal sealed record FunctionCallBody(string Name, string Arguments);

/// <summary>A function call in a streamed delta: OpenAI's form with its index among the reply's calls; sent whole.</summary>
internal sealed record ChunkToolCall(int Index, string Id, string Type, FunctionCallBody Function);

internal sealed record ChatCompletionChunk(string Id, long Created, string Model, ChunkChoice[] Choices, Usage? Usage)
{
    public string Object => "chat.completion.chunk";
}

internal sealed record ChunkChoice(int Index, ChunkDelta Delta, ChatLogprobs? Logprobs, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? FinishReason);

internal sealed record ChunkDelta(string? Role, string? Content, string? ReasoningContent = null, ChunkToolCall[]? ToolCalls = null);

internal sealed record TextCompletion(string Id, long Created, string Model, TextChoice[] Choices, Usage? Usage)
{
    public string Object => "text_completion";
}

internal sealed record TextChoice(int Index, string Text, TextLogprobs? Logprobs, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? FinishReason);

// Chat's logprobs: one entry per generated token, its UTF-8 bytes as integers (a token may be part of a character).
internal sealed record ChatLogprobs(ChatTokenLogprob[] Content);

internal sealed record ChatTokenLogprob(string Token, float Logprob, int[] Bytes, ChatTopLogprob[] TopLogprobs);

internal sealed record ChatTopLogprob(string Token, float Logprob, int[] Bytes);

// The legacy completions shape: parallel arrays, and the alternatives as token text to logprob.
internal sealed record TextLogprobs(string[] Tokens, float[] TokenLogprobs, Dictionary<string, float>[] TopLogprobs, int[] TextOffset);

internal sealed record TokenizeResponse(int[] Tokens);

internal sealed record DetokenizeResponse(string Content);
