using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Qwen2.Native.Embeddings;
using Qwen2.Server.Engine;

namespace Qwen2.Server.Http;

/// <summary>
/// <c>POST /v1/embeddings</c> as OpenAI's API has it: <c>input</c> a string, an array of strings, an array of token ids
/// or an array of such arrays; <c>encoding_format</c> float (JSON numbers) or base64 (little-endian float32 bytes);
/// <c>dimensions</c> truncates and normalises again. The vectors are <see cref="Qwen2EmbeddingGenerator"/>'s.
/// </summary>
internal static class EmbeddingsHandler
{
    /// <summary>Most inputs in one request (OpenAI's limit).</summary>
    public const int MaxInputs = 2048;

    public static async Task Handle(HttpContext context, ServerEngine engine)
    {
        var pipeline = engine.Pipeline;
        using var doc = await RequestBody.ReadObjectAsync(context.Request, engine.Options.MaxRequestBodyBytes, context.RequestAborted);
        var f = new JsonFields(doc.RootElement);
        var generator = engine.Embedder;
        var inputs = Inputs(f, generator, pipeline.Model.Config.VocabSize);
        bool base64 = (f.String("encoding_format") ?? "float") switch
        {
            "float" => false,
            "base64" => true,
            var other => throw ApiException.BadRequest($"encoding_format must be \"float\" or \"base64\", got \"{other}\"", "encoding_format"),
        };
        int? dimensions = (int?)f.Integer("dimensions", 1, generator.Dimensions);
        for (int i = 0; i < inputs.Length; i++)
        {
            if (inputs[i].Length == 0) throw ApiException.BadRequest($"input[{i}] has no tokens; an embedding needs at least one", "input");
            if (inputs[i].Length > generator.MaxInputTokens)
                throw new ApiException(400, "exceed_context_size_error",
                    $"input[{i}] is {inputs[i].Length} tokens, and this model takes at most {generator.MaxInputTokens}; shorten it", "input");
        }

        float[][] vectors;
        using (engine.Admit())
            vectors = await engine.EmbedAsync(inputs, dimensions, context.RequestAborted);
        context.Response.ContentType = "application/json";
        await Write(context.Response.Body, vectors, base64, engine.ModelId, inputs.Sum(i => (long)i.Length), context.RequestAborted);
    }

    /// <summary>The inputs as token ids: text tokenized with the special tokens (Qwen3-Embedding's appended &lt;|endoftext|&gt;); ids as given.</summary>
    private static int[][] Inputs(JsonFields f, Qwen2EmbeddingGenerator generator, int vocab)
    {
        if (f.Get("input") is not { } input) throw ApiException.BadRequest("input is required: a string, an array of strings, or token ids", "input");
        switch (input.ValueKind)
        {
            case JsonValueKind.String:
                return [generator.Tokenize(input.GetString()!)];
            case JsonValueKind.Array:
                int count = input.GetArrayLength();
                if (count == 0) throw ApiException.BadRequest("input is an empty array; give at least one text", "input");
                if (count > MaxInputs) throw ApiException.BadRequest($"input holds {count} items; at most {MaxInputs} are allowed in one request", "input");
                if (input[0].ValueKind == JsonValueKind.Number) return [JsonFields.TokenIds(input, "input", vocab)];
                var result = new int[count][];
                int i = 0;
                foreach (var item in input.EnumerateArray())
                {
                    result[i] = item.ValueKind switch
                    {
                        JsonValueKind.String => generator.Tokenize(item.GetString()!),
                        JsonValueKind.Array => JsonFields.TokenIds(item, $"input[{i}]", vocab),
                        _ => throw ApiException.BadRequest($"input[{i}] must be a string or an array of token ids, got a {RequestBody.Kind(item.ValueKind)}", "input"),
                    };
                    i++;
                }
                return result;
            default:
                throw JsonFields.Mistyped("input", "a string, an array of strings, or an array of token ids", input);
        }
    }

    /// <summary>Writes the list response directly: vectors of thousands of floats are not worth a DTO per number.</summary>
    private static async Task Write(Stream body, float[][] vectors, bool base64, string model, long tokens, CancellationToken cancellationToken)
    {
        await using var w = new Utf8JsonWriter(body);
        w.WriteStartObject();
        w.WriteString("object", "list");
        w.WriteStartArray("data");
        for (int i = 0; i < vectors.Length; i++)
        {
            w.WriteStartObject();
            w.WriteString("object", "embedding");
            w.WriteNumber("index", i);
            if (base64)
            {
                // OpenAI's base64 is the float32 values' bytes, little-endian, as numpy.frombuffer(..., dtype=float32) reads them.
                w.WriteBase64String("embedding", BitConverter.IsLittleEndian ? MemoryMarshal.AsBytes(vectors[i].AsSpan()) : LittleEndian(vectors[i]));
            }
            else
            {
                w.WriteStartArray("embedding");
                foreach (float x in vectors[i]) w.WriteNumberValue(x);
                w.WriteEndArray();
            }
            w.WriteEndObject();
            if (w.BytesPending > 1 << 16) await w.FlushAsync(cancellationToken);
        }
        w.WriteEndArray();
        w.WriteString("model", model);
        w.WriteStartObject("usage");
        w.WriteNumber("prompt_tokens", tokens);
        w.WriteNumber("total_tokens", tokens);
        w.WriteEndObject();
        w.WriteEndObject();
        await w.FlushAsync(cancellationToken);
    }

    private static byte[] LittleEndian(float[] v)
    {
        var bytes = new byte[v.Length * sizeof(float)];
        for (int i = 0; i < v.Length; i++) System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), v[i]);
        return bytes;
    }
}
