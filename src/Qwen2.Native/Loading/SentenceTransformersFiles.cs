using System.Text.Json;

namespace Qwen2.Native;

/// <summary>
/// What sentence-transformers' files beside a checkpoint say (Qwen3-Embedding ships them): <c>modules.json</c> lists the
/// pipeline (Transformer, then Pooling, then Normalize), the Pooling module's <c>config.json</c> names the pooling,
/// and <c>config_sentence_transformers.json</c> holds the named prompts (Qwen3-Embedding's "query" instruction).
/// </summary>
internal sealed record SentenceTransformersFiles(bool LastTokenPooling, IReadOnlyDictionary<string, string> Prompts, string? DefaultPromptName)
{
    /// <summary>No sentence-transformers files: a causal language model.</summary>
    public static SentenceTransformersFiles None { get; } = new(false, new Dictionary<string, string>(), null);

    /// <summary>Reads the files in <paramref name="directory"/>; <see cref="None"/> where there is no modules.json.</summary>
    /// <exception cref="CheckpointException">A file is malformed, or the pipeline is one the engine does not compute (a pooling other than the last token, a Dense layer); the message names the file and field.</exception>
    public static SentenceTransformersFiles Read(string directory)
    {
        string modulesPath = Path.Combine(directory, "modules.json");
        if (!File.Exists(modulesPath)) return None;
        using var modules = Parse(modulesPath);
        if (modules.RootElement.ValueKind != JsonValueKind.Array) throw new CheckpointException(modulesPath, "is not a JSON array of modules");
        bool lastToken = false;
        int index = 0;
        foreach (var module in modules.RootElement.EnumerateArray())
        {
            string field = $"[{index++}]";
            string type = String(module, "type", modulesPath, field + ".type") ?? throw new CheckpointException(modulesPath, "is missing", field: field + ".type");
            switch (type)
            {
                case "sentence_transformers.models.Transformer" or "sentence_transformers.models.Normalize":
                    break; // the model itself; the L2 normalisation every embedding gets
                case "sentence_transformers.models.Pooling":
                    lastToken = ReadPooling(Path.Combine(directory, String(module, "path", modulesPath, field + ".path") ?? "", "config.json"));
                    break;
                default:
                    throw new CheckpointException(modulesPath, $"is module type {type}; only Transformer, Pooling (last token) and Normalize are supported", field: field + ".type");
            }
        }
        if (!lastToken) throw new CheckpointException(modulesPath, "lists no Pooling module; an embedding model needs one (lasttoken, as Qwen3-Embedding)");

        var prompts = new Dictionary<string, string>(StringComparer.Ordinal);
        string? defaultPrompt = null;
        string configPath = Path.Combine(directory, "config_sentence_transformers.json");
        if (File.Exists(configPath))
        {
            using var config = Parse(configPath);
            var root = config.RootElement;
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("prompts", out var p) && p.ValueKind == JsonValueKind.Object)
                foreach (var prompt in p.EnumerateObject())
                    prompts[prompt.Name] = prompt.Value.ValueKind == JsonValueKind.String ? prompt.Value.GetString()!
                        : throw new CheckpointException(configPath, $"is {prompt.Value.ValueKind}, expected a string", field: "prompts." + prompt.Name);
            defaultPrompt = String(root, "default_prompt_name", configPath, "default_prompt_name");
            if (defaultPrompt is not null && !prompts.ContainsKey(defaultPrompt))
                throw new CheckpointException(configPath, $"is \"{defaultPrompt}\", which prompts does not hold", field: "default_prompt_name");
        }
        return new SentenceTransformersFiles(true, prompts, defaultPrompt);
    }

    /// <summary>Whether the Pooling module pools the last token; any other mode is refused rather than computed otherwise.</summary>
    private static bool ReadPooling(string path)
    {
        if (!File.Exists(path)) throw new CheckpointException(path, "file not found; modules.json lists a Pooling module here");
        using var doc = Parse(path);
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new CheckpointException(path, "is not a JSON object");
        var on = doc.RootElement.EnumerateObject()
            .Where(p => p.Name.StartsWith("pooling_mode_", StringComparison.Ordinal) && p.Value.ValueKind == JsonValueKind.True)
            .Select(p => p.Name).ToArray();
        if (on is not ["pooling_mode_lasttoken"])
            throw new CheckpointException(path, on.Length == 0 ? "turns no pooling mode on" : $"turns on {string.Join(", ", on)}; only pooling_mode_lasttoken (Qwen3-Embedding's) is supported",
                field: on.Length == 0 ? "pooling_mode_lasttoken" : on[0]);
        return true;
    }

    private static string? String(JsonElement e, string name, string file, string field) =>
        e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.String ? v.GetString() : throw new CheckpointException(file, $"is {v.ValueKind}, expected a string", field: field);

    private static JsonDocument Parse(string path)
    {
        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new CheckpointException(path, $"is not valid JSON: {e.Message}", inner: e);
        }
    }
}
