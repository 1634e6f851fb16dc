using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Qwen2.Native.Structured;
using Qwen2.Native.Text;
using Qwen2.Server.Engine;
using Qwen2.Server.Protocol;

namespace Qwen2.Server.Http;

/// <summary>The endpoints' request delegates (plain RequestDelegates: nothing to generate or reflect for Native AOT).</summary>
internal static class Handlers
{
    /// <summary>Runs <paramref name="handler"/>, answering a refused request with its OpenAI-shaped error.</summary>
    public static RequestDelegate Json(Func<HttpContext, ServerEngine, Task> handler) => async context =>
    {
        var engine = context.RequestServices.GetRequiredService<ServerEngine>();
        try
        {
            await handler(context, engine);
        }
        catch (ApiException e) when (!context.Response.HasStarted)
        {
            await ErrorWriter.WriteAsync(context, e);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; its generation is already cancelled and there is no one to answer.
        }
        catch (Exception e) when (!context.Response.HasStarted && e is not OperationCanceledException)
        {
            context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Qwen2.Server").LogError(e, "request {Path} failed", context.Request.Path);
            await ErrorWriter.WriteAsync(context, 500, "server_error", $"the server failed: {e.Message}");
        }
    };

    public static Task Health(HttpContext context, ServerEngine engine)
    {
        context.Response.StatusCode = engine.IsReady ? 200 : 503;
        if (!engine.IsReady) context.Response.Headers.RetryAfter = engine.Options.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Write(context, new HealthResponse(engine.IsReady ? "ok" : "loading"), ServerJsonContext.Api.HealthResponse);
    }

    public static Task Models(HttpContext context, ServerEngine engine)
    {
        _ = engine.Pipeline; // 503 while loading
        return Write(context, new ModelList([new ModelCard(engine.ModelId, engine.Created, "qwen2managed")]), ServerJsonContext.Api.ModelList);
    }

    public static async Task Chat(HttpContext context, ServerEngine engine)
    {
        var pipeline = engine.Pipeline;
        _ = engine.ReadyGenerator; // an embedding model has none: 400 before the body is read
        using var doc = await RequestBody.ReadObjectAsync(context.Request, engine.Options.MaxRequestBodyBytes, context.RequestAborted);
        var f = new JsonFields(doc.RootElement);
        var messages = ChatMessages.Read(f);
        var (tools, forced) = ChatTools.Read(f);
        var request = SamplingRequest.Read(f, pipeline.GenerationConfig, chat: true) with { ResponseFormat = ResponseFormats.Read(f) };
        bool thinking = EnableThinking(f);
        string text;
        try
        {
            if (tools is not null && !pipeline.ChatTemplate.SupportsTools)
                throw ApiException.BadRequest($"this model's chat template ({pipeline.ChatTemplate.Family}) has no tool calling; Qwen2.5 and Qwen3 templates have", "tools");
            text = pipeline.ChatTemplate.Render(messages, addGenerationPrompt: true, thinking, tools);
        }
        catch (ArgumentException e)
        {
            throw ApiException.BadRequest(e.Message.Split(" (Parameter")[0], "messages");
        }
        catch (NotSupportedException e)
        {
            throw ApiException.BadRequest($"this model has no usable chat template ({e.Message}); send raw text to /v1/completions", "messages");
        }
        if (forced is not null)
        {
            // A forced call: the prompt opens the block, and the output is a call to one of the forced functions whose
            // arguments are valid for its parameters (as vLLM constrains tool_choice "required").
            text += ToolCallSchema.PromptSuffix;
            try
            {
                request = request with { ResponseFormat = ToolCallSchema.For(forced) };
            }
            catch (JsonSchemaException e)
            {
                throw ApiException.BadRequest($"tools: a forced call's parameters cannot be constrained: {e.Message}", "tools");
            }
        }
        // Qwen3 thinks first: its <think> block goes to reasoning_content, as llama.cpp and vLLM return it; with tools,
        // <tool_call> blocks go to tool_calls.
        var reply = new ChatReply(forced is null ? pipeline.ChatTemplate.ReasoningSplitterFor(text) : null,
            tools is null ? null : new ToolCallParser(insideCall: forced is not null));
        await CompletionRunner.RunAsync(context, engine, pipeline.Tokenizer.Encode(text), request, chat: true, reply);
    }

    /// <summary><c>chat_template_kwargs.enable_thinking</c>, as vLLM and llama.cpp's server take it (Qwen3's switch); true when absent.</summary>
    private static bool EnableThinking(JsonFields f)
    {
        if (f.Get("chat_template_kwargs") is not { } kwargs) return true;
        if (kwargs.ValueKind != JsonValueKind.Object) throw JsonFields.Mistyped("chat_template_kwargs", "an object", kwargs);
        if (!kwargs.TryGetProperty("enable_thinking", out var e) || e.ValueKind == JsonValueKind.Null) return true;
        return e.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw JsonFields.Mistyped("chat_template_kwargs.enable_thinking", "a boolean", e),
        };
    }

    public static async Task Completions(HttpContext context, ServerEngine engine)
    {
        var pipeline = engine.Pipeline;
        _ = engine.ReadyGenerator; // an embedding model has none: 400 before the body is read
        using var doc = await RequestBody.ReadObjectAsync(context.Request, engine.Options.MaxRequestBodyBytes, context.RequestAborted);
        var f = new JsonFields(doc.RootElement);
        int[] prompt = Prompt(f, pipeline);
        var request = SamplingRequest.Read(f, pipeline.GenerationConfig, chat: false);
        await CompletionRunner.RunAsync(context, engine, prompt, request, chat: false);
    }

    /// <summary><c>prompt</c>: a string, an array of token ids, or an array of one string or one id array.</summary>
    private static int[] Prompt(JsonFields f, Native.Generation.Qwen2Pipeline pipeline)
    {
        if (f.Get("prompt") is not { } p) throw ApiException.BadRequest("prompt is required: a string or an array of token ids", "prompt");
        if (p.ValueKind == JsonValueKind.Array && p.GetArrayLength() == 1 && p[0].ValueKind is JsonValueKind.String or JsonValueKind.Array) p = p[0];
        else if (p.ValueKind == JsonValueKind.Array && p.GetArrayLength() > 1 && p[0].ValueKind is JsonValueKind.String or JsonValueKind.Array)
            throw ApiException.BadRequest("prompt holds several prompts; one prompt per request is supported", "prompt");
        int[] ids = p.ValueKind switch
        {
            JsonValueKind.String => pipeline.Tokenizer.Encode(p.GetString()!),
            JsonValueKind.Array => JsonFields.TokenIds(p, "prompt", pipeline.Model.Config.VocabSize),
            _ => throw JsonFields.Mistyped("prompt", "a string or an array of token ids", p),
        };
        if (ids.Length == 0) throw ApiException.BadRequest("prompt is empty; a completion needs at least one prompt token", "prompt");
        return ids;
    }

    public static async Task Tokenize(HttpContext context, ServerEngine engine)
    {
        var pipeline = engine.Pipeline;
        using var doc = await RequestBody.ReadObjectAsync(context.Request, engine.Options.MaxRequestBodyBytes, context.RequestAborted);
        string content = new JsonFields(doc.RootElement).String("content") ?? throw ApiException.BadRequest("content is required: the text to tokenize", "content");
        await Write(context, new TokenizeResponse(pipeline.Tokenizer.Encode(content)), ServerJsonContext.Api.TokenizeResponse);
    }

    public static async Task Detokenize(HttpContext context, ServerEngine engine)
    {
        var pipeline = engine.Pipeline;
        using var doc = await RequestBody.ReadObjectAsync(context.Request, engine.Options.MaxRequestBodyBytes, context.RequestAborted);
        if (new JsonFields(doc.RootElement).Get("tokens") is not { } t) throw ApiException.BadRequest("tokens is required: an array of token ids", "tokens");
        if (t.ValueKind != JsonValueKind.Array) throw JsonFields.Mistyped("tokens", "an array of token ids", t);
        var ids = JsonFields.TokenIds(t, "tokens", pipeline.Tokenizer.VocabSize);
        await Write(context, new DetokenizeResponse(pipeline.Tokenizer.Decode(ids)), ServerJsonContext.Api.DetokenizeResponse);
    }

    public static Task NotFound(HttpContext context, ServerEngine engine) =>
        throw new ApiException(404, "not_found_error", $"no endpoint {context.Request.Method} {context.Request.Path}");

    private static Task Write<T>(HttpContext context, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        context.Response.ContentType = "application/json";
        return JsonSerializer.SerializeAsync(context.Response.Body, value, type, context.RequestAborted);
    }
}
