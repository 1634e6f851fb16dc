using System.IO.Compression;
using System.Text.Json;

namespace Qwen2.Native.Text;

/// <summary>The parsed, validated contents of tokenizer.json and tokenizer_config.json.</summary>
internal sealed class TokenizerFiles
{
    public required List<KeyValuePair<string, int>> Vocab { get; init; }
    public required List<string> Merges { get; init; }
    public required List<AddedToken> AddedTokens { get; init; }
    public required TokenizerSettings Settings { get; init; }
    /// <summary>Ids the post-processor's single-sequence template puts before the text (TemplateProcessing; GGUF add_bos_token).</summary>
    public int[] TemplatePrefix { get; init; } = [];
    /// <summary>Ids it puts after the text (Qwen3-Embedding's <c>&lt;|endoftext|&gt;</c>; GGUF add_eos_token).</summary>
    public int[] TemplateSuffix { get; init; } = [];

    public static TokenizerFiles Read(Stream tokenizerJson, Stream? tokenizerConfig, string jsonName, string configName)
    {
        TokenizerSettings settings = new();
        if (tokenizerConfig is not null)
        {
            using var configDoc = Parse(ReadAll(tokenizerConfig, configName), configName);
            settings = WithValidStrings(configDoc.RootElement, configName, () => ReadSettings(configDoc.RootElement, configName));
        }
        using var doc = Parse(ReadAll(tokenizerJson, jsonName), jsonName);
        var root = doc.RootElement;
        return WithValidStrings(root, jsonName, () =>
        {
            if (root.ValueKind != JsonValueKind.Object) throw new CheckpointException(jsonName, "is not a JSON object");
            CheckPipeline(root, jsonName);
            var model = Required(root, "model", JsonValueKind.Object, jsonName, "model");
            var vocab = ReadVocab(Required(model, "vocab", JsonValueKind.Object, jsonName, "model.vocab"), jsonName);
            var merges = ReadMerges(Required(model, "merges", JsonValueKind.Array, jsonName, "model.merges"), vocab, jsonName);
            var added = ReadAddedTokens(root, jsonName);
            CheckAddedAgainstVocab(added, vocab, jsonName);
            int maxId = Math.Max(vocab.Max(p => p.Value), added.Count == 0 ? -1 : added.Max(t => t.Id));
            var (prefix, suffix) = ReadTemplate(root, jsonName, maxId);
            return new TokenizerFiles { Vocab = vocab, Merges = merges, AddedTokens = added, Settings = settings, TemplatePrefix = prefix, TemplateSuffix = suffix };
        });
    }

    /// <summary>
    /// Runs <paramref name="read"/>, turning System.Text.Json's InvalidOperationException for a string escape that is not
    /// valid UTF-16 ("\ud800") into a <see cref="CheckpointException"/> naming the JSON path of the first such string.
    /// Found only on the error path, so a valid file is not walked twice.
    /// </summary>
    private static T WithValidStrings<T>(JsonElement root, string file, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (InvalidOperationException e)
        {
            string? path = FindInvalidString(root, "$");
            if (path is null) throw;
            throw new CheckpointException(file, "holds a string escape that is not valid UTF-16 (a lone surrogate)", field: path, inner: e);
        }
    }

    private static string? FindInvalidString(JsonElement e, string path)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.String:
                try { _ = e.GetString(); return null; }
                catch (InvalidOperationException) { return path; }
            case JsonValueKind.Object:
                int i = 0;
                foreach (var p in e.EnumerateObject())
                {
                    string name;
                    try { name = p.Name; }
                    catch (InvalidOperationException) { return $"{path}.<key {i}>"; }
                    if (FindInvalidString(p.Value, $"{path}.{name}") is { } found) return found;
                    i++;
                }
                return null;
            case JsonValueKind.Array:
                int index = 0;
                foreach (var item in e.EnumerateArray())
                    if (FindInvalidString(item, $"{path}[{index++}]") is { } found) return found;
                return null;
            default:
                return null;
        }
    }

    /// <summary>The whole stream, un-gzipped if it starts with the gzip magic (the CLI ships tokenizer.json.gz).</summary>
    /// <exception cref="CheckpointException">The stream starts with the gzip magic but is not a valid gzip stream.</exception>
    internal static byte[] ReadAll(Stream stream, string file)
    {
        using var buffer = new MemoryStream();
        stream.CopyTo(buffer);
        var bytes = buffer.ToArray();
        if (bytes.Length < 2 || bytes[0] != 0x1F || bytes[1] != 0x8B) return bytes;
        try
        {
            using var gzip = new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress);
            using var plain = new MemoryStream();
            gzip.CopyTo(plain);
            return plain.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new CheckpointException(file, $"starts like a gzip stream but does not decompress: {e.Message}", field: "gzip", inner: e);
        }
    }

    private static JsonDocument Parse(byte[] bytes, string file)
    {
        try
        {
            return JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (JsonException e)
        {
            throw new CheckpointException(file, $"is not valid JSON: {e.Message}", inner: e);
        }
    }

    private static JsonElement Required(JsonElement parent, string name, JsonValueKind kind, string file, string field)
    {
        if (!parent.TryGetProperty(name, out var e)) throw new CheckpointException(file, "is missing", field: field);
        if (e.ValueKind != kind) throw new CheckpointException(file, $"is {e.ValueKind}, expected {kind}", field: field);
        return e;
    }

    private static string? Type(JsonElement e) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;

    /// <summary>
    /// The steps are implemented for Qwen's pipeline only; anything else is refused rather than tokenized differently
    /// from Hugging Face without a word.
    /// </summary>
    private static void CheckPipeline(JsonElement root, string file)
    {
        if (root.TryGetProperty("normalizer", out var norm) && norm.ValueKind != JsonValueKind.Null && Type(norm) != "NFC")
            throw new CheckpointException(file, $"normalizer {Type(norm) ?? norm.ValueKind.ToString()} is not supported; only NFC or none", field: "normalizer");

        var pre = Required(root, "pre_tokenizer", JsonValueKind.Object, file, "pre_tokenizer");
        bool ok = Type(pre) == "Sequence" && pre.TryGetProperty("pretokenizers", out var steps) && steps.ValueKind == JsonValueKind.Array
            && steps.GetArrayLength() == 2 && IsQwenSplit(steps[0]) && IsPlainByteLevel(steps[1]);
        if (!ok)
            throw new CheckpointException(file,
                "is not the Qwen2 pre-tokenizer: expected Sequence[Split(Qwen2 pattern, Isolated), ByteLevel(add_prefix_space false, use_regex false)]",
                field: "pre_tokenizer");

        if (root.TryGetProperty("decoder", out var dec) && dec.ValueKind != JsonValueKind.Null && Type(dec) != "ByteLevel")
            throw new CheckpointException(file, $"decoder {Type(dec)} is not supported; only ByteLevel", field: "decoder");
        if (root.TryGetProperty("post_processor", out var post) && post.ValueKind != JsonValueKind.Null)
            foreach (var step in PostProcessorSteps(post))
                if (Type(step) is not ("ByteLevel" or "TemplateProcessing"))
                    throw new CheckpointException(file, $"post_processor {Type(step) ?? step.ValueKind.ToString()} is not supported; only ByteLevel, TemplateProcessing, a Sequence of them, or none", field: "post_processor");

        var model = Required(root, "model", JsonValueKind.Object, file, "model");
        if (Type(model) is { } type && type != "BPE") throw new CheckpointException(file, $"model type {type} is not supported; only BPE", field: "model.type");
        RequireFalsy(model, "byte_fallback", file);
        RequireFalsy(model, "ignore_merges", file);
        RequireFalsy(model, "dropout", file);
        foreach (var name in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            if (model.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString() is { Length: > 0 })
                throw new CheckpointException(file, "is not supported; only empty or null", field: "model." + name);
    }

    /// <summary>The post-processor's steps: itself, or a Sequence's processors.</summary>
    private static IEnumerable<JsonElement> PostProcessorSteps(JsonElement post) =>
        Type(post) == "Sequence" && post.TryGetProperty("processors", out var steps) && steps.ValueKind == JsonValueKind.Array
            ? steps.EnumerateArray().ToArray() : [post];

    /// <summary>
    /// The special-token ids a TemplateProcessing post-processor's <c>single</c> template puts around the one sequence
    /// (<c>$A</c>), as Hugging Face adds them when <c>add_special_tokens</c> is true: Qwen3-Embedding appends
    /// <c>&lt;|endoftext|&gt;</c> this way. ByteLevel steps change no ids; no post-processor adds nothing.
    /// </summary>
    private static (int[] Prefix, int[] Suffix) ReadTemplate(JsonElement root, string file, int maxId)
    {
        if (!root.TryGetProperty("post_processor", out var post) || post.ValueKind == JsonValueKind.Null) return ([], []);
        var template = PostProcessorSteps(post).Where(s => Type(s) == "TemplateProcessing").ToArray();
        if (template.Length == 0) return ([], []);
        if (template.Length > 1) throw new CheckpointException(file, "holds more than one TemplateProcessing step", field: "post_processor");
        var t = template[0];
        var single = Required(t, "single", JsonValueKind.Array, file, "post_processor.single");
        var specials = t.TryGetProperty("special_tokens", out var sp) && sp.ValueKind == JsonValueKind.Object ? sp : default;
        List<int> prefix = new(), suffix = new();
        bool seenSequence = false;
        int index = 0;
        foreach (var piece in single.EnumerateArray())
        {
            string field = $"post_processor.single[{index++}]";
            if (piece.ValueKind == JsonValueKind.Object && piece.TryGetProperty("Sequence", out var seq))
            {
                string? id = seq.ValueKind == JsonValueKind.Object && seq.TryGetProperty("id", out var sid) && sid.ValueKind == JsonValueKind.String ? sid.GetString() : null;
                if (id != "A" || seenSequence) throw new CheckpointException(file, $"is sequence {id ?? "(none)"}; the single template holds sequence A once", field: field);
                seenSequence = true;
            }
            else if (piece.ValueKind == JsonValueKind.Object && piece.TryGetProperty("SpecialToken", out var special)
                && special.ValueKind == JsonValueKind.Object && special.TryGetProperty("id", out var name) && name.ValueKind == JsonValueKind.String)
            {
                string token = name.GetString()!;
                if (specials.ValueKind != JsonValueKind.Object || !specials.TryGetProperty(token, out var entry) || entry.ValueKind != JsonValueKind.Object
                    || !entry.TryGetProperty("ids", out var ids) || ids.ValueKind != JsonValueKind.Array)
                    throw new CheckpointException(file, $"names special token '{token}', which post_processor.special_tokens does not list with its ids", field: field);
                foreach (var idElement in ids.EnumerateArray())
                {
                    if (idElement.ValueKind != JsonValueKind.Number || !idElement.TryGetInt32(out int id) || id < 0 || id > maxId)
                        throw new CheckpointException(file, $"lists id {idElement} for '{token}'; ids run from 0 to {maxId}", field: $"post_processor.special_tokens.{token}.ids");
                    (seenSequence ? suffix : prefix).Add(id);
                }
            }
            else throw new CheckpointException(file, "is neither {\"Sequence\": …} nor {\"SpecialToken\": …}", field: field);
        }
        if (!seenSequence) throw new CheckpointException(file, "does not hold sequence A", field: "post_processor.single");
        return (prefix.ToArray(), suffix.ToArray());
    }

    private static void RequireFalsy(JsonElement model, string name, string file)
    {
        if (model.TryGetProperty(name, out var v) && v.ValueKind is not (JsonValueKind.Null or JsonValueKind.False))
            throw new CheckpointException(file, $"is {v}, only false or null is supported", field: "model." + name);
    }

    private static bool IsQwenSplit(JsonElement s) =>
        Type(s) == "Split"
        && s.TryGetProperty("pattern", out var p) && p.ValueKind == JsonValueKind.Object
        && p.TryGetProperty("Regex", out var r) && r.ValueKind == JsonValueKind.String && r.GetString() == Qwen2PreTokenizer.Pattern
        && s.TryGetProperty("behavior", out var b) && b.ValueKind == JsonValueKind.String && b.GetString() == "Isolated"
        && !(s.TryGetProperty("invert", out var inv) && inv.ValueKind == JsonValueKind.True);

    private static bool IsPlainByteLevel(JsonElement s) =>
        Type(s) == "ByteLevel"
        && !(s.TryGetProperty("add_prefix_space", out var a) && a.ValueKind == JsonValueKind.True)
        && s.TryGetProperty("use_regex", out var u) && u.ValueKind == JsonValueKind.False;

    private static List<KeyValuePair<string, int>> ReadVocab(JsonElement vocab, string file)
    {
        var list = new List<KeyValuePair<string, int>>(200_000);
        var seen = new HashSet<int>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in vocab.EnumerateObject())
        {
            // JSON allows a key twice and System.Text.Json keeps both; which id would the token get?
            if (!names.Add(p.Name)) throw new CheckpointException(file, $"token '{p.Name}' is listed twice", field: "model.vocab");
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id) || id < 0)
                throw new CheckpointException(file, $"token '{p.Name}' has id {p.Value}, expected a non-negative integer", field: "model.vocab");
            if (!seen.Add(id)) throw new CheckpointException(file, $"id {id} is given to more than one token", field: "model.vocab");
            list.Add(new(p.Name, id));
        }
        if (list.Count == 0) throw new CheckpointException(file, "is empty", field: "model.vocab");
        // Ids are unique, so all below the count means exactly 0..count-1. A sparse id (2147483647, say) would size the
        // id tables by it; Hugging Face also numbers added tokens from the vocabulary's count, which assumes no gaps.
        foreach (var (token, id) in list)
            if (id >= list.Count)
                throw new CheckpointException(file, $"token '{token}' has id {id}, but the vocabulary holds {list.Count} tokens; ids must run from 0 to {list.Count - 1}", field: "model.vocab");
        return list;
    }

    /// <summary>Merges as "a b" strings, accepting both the string form and the ["a","b"] pair form (Qwen3).</summary>
    private static List<string> ReadMerges(JsonElement merges, List<KeyValuePair<string, int>> vocab, string file)
    {
        var tokens = new HashSet<string>(vocab.Select(p => p.Key), StringComparer.Ordinal);
        var list = new List<string>(merges.GetArrayLength());
        int index = 0;
        foreach (var m in merges.EnumerateArray())
        {
            string field = $"model.merges[{index}]";
            string a, b;
            if (m.ValueKind == JsonValueKind.String)
            {
                var parts = m.GetString()!.Split(' ');
                if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
                    throw new CheckpointException(file, $"is {m.GetRawText()}, expected two tokens separated by one space", field: field);
                (a, b) = (parts[0], parts[1]);
            }
            else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2
                     && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String)
            {
                (a, b) = (m[0].GetString()!, m[1].GetString()!);
                // Byte-level tokens never hold a space (it is 'Ġ'), so joining with one is unambiguous.
                if (a.Length == 0 || b.Length == 0 || a.Contains(' ') || b.Contains(' '))
                    throw new CheckpointException(file, $"is {m.GetRawText()}, expected two non-empty tokens without spaces", field: field);
            }
            else throw new CheckpointException(file, $"is {m.GetRawText()}, expected \"a b\" or [\"a\", \"b\"]", field: field);

            foreach (var t in new[] { a, b, a + b })
                if (!tokens.Contains(t)) throw new CheckpointException(file, $"uses token '{t}', which is not in model.vocab", field: field);
            list.Add(a + " " + b);
            index++;
        }
        return list;
    }

    private static List<AddedToken> ReadAddedTokens(JsonElement root, string file)
    {
        var list = new List<AddedToken>();
        if (!root.TryGetProperty("added_tokens", out var arr) || arr.ValueKind == JsonValueKind.Null) return list;
        if (arr.ValueKind != JsonValueKind.Array) throw new CheckpointException(file, $"is {arr.ValueKind}, expected Array", field: "added_tokens");
        int index = 0;
        foreach (var t in arr.EnumerateArray())
        {
            string field = $"added_tokens[{index++}]";
            if (t.ValueKind != JsonValueKind.Object) throw new CheckpointException(file, $"is {t.ValueKind}, expected Object", field: field);
            if (!t.TryGetProperty("id", out var idE) || idE.ValueKind != JsonValueKind.Number || !idE.TryGetInt32(out int id) || id < 0)
                throw new CheckpointException(file, "has no non-negative integer id", field: field + ".id");
            if (!t.TryGetProperty("content", out var c) || c.ValueKind != JsonValueKind.String || c.GetString() is not { Length: > 0 } content)
                throw new CheckpointException(file, "has no non-empty content", field: field + ".content");
            list.Add(new AddedToken(id, content, Flag(t, "special", file, field), Flag(t, "single_word", file, field),
                Flag(t, "lstrip", file, field), Flag(t, "rstrip", file, field), Flag(t, "normalized", file, field)));
        }
        return list;
    }

    /// <summary>
    /// Hugging Face ignores the ids in added_tokens: it gives a token that is already in the vocabulary the vocabulary's
    /// id, and the others the next free id from the vocabulary size on, in file order (AddedVocabulary::add_tokens).
    /// A file whose ids disagree would encode differently here and there, so it is refused.
    /// </summary>
    private static void CheckAddedAgainstVocab(List<AddedToken> added, List<KeyValuePair<string, int>> vocab, string file)
    {
        var byText = new Dictionary<string, int>(vocab.Count, StringComparer.Ordinal);
        foreach (var (token, id) in vocab) byText[token] = id;
        var assigned = new Dictionary<string, int>(StringComparer.Ordinal);
        int? maxAssigned = null;
        for (int i = 0; i < added.Count; i++)
        {
            var t = added[i];
            if (!assigned.TryGetValue(t.Content, out int expected))
            {
                expected = byText.TryGetValue(t.Content, out int vocabId) ? vocabId
                    : maxAssigned is not { } max ? vocab.Count
                    : max >= vocab.Count ? max + 1 : vocab.Count;
                assigned[t.Content] = expected;
                maxAssigned = Math.Max(maxAssigned ?? expected, expected);
            }
            if (t.Id != expected)
                throw new CheckpointException(file, $"token '{t.Content}' has id {t.Id}, but Hugging Face's tokenizers would give it id {expected} " +
                    "(the vocabulary's id, or the next id after the vocabulary and the added tokens before it)", field: $"added_tokens[{i}].id");
        }
    }

    private static bool Flag(JsonElement t, string name, string file, string field)
    {
        if (!t.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return false;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new CheckpointException(file, $"is {v}, expected true or false", field: field + "." + name),
        };
    }

    private static TokenizerSettings ReadSettings(JsonElement r, string file)
    {
        if (r.ValueKind != JsonValueKind.Object) throw new CheckpointException(file, "is not a JSON object");

        var templates = new Dictionary<string, string>(StringComparer.Ordinal);
        if (r.TryGetProperty("chat_template", out var ct))
        {
            if (ct.ValueKind == JsonValueKind.String) templates["default"] = ct.GetString()!;
            else if (ct.ValueKind == JsonValueKind.Array)
            {
                int i = 0;
                foreach (var e in ct.EnumerateArray())
                {
                    if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String
                        || !e.TryGetProperty("template", out var tpl) || tpl.ValueKind != JsonValueKind.String)
                        throw new CheckpointException(file, "expected an object with string fields name and template", field: $"chat_template[{i}]");
                    templates[n.GetString()!] = tpl.GetString()!;
                    i++;
                }
            }
            else if (ct.ValueKind != JsonValueKind.Null)
                throw new CheckpointException(file, $"is {ct.ValueKind}, expected a string or a list of {{name, template}}", field: "chat_template");
        }

        return new TokenizerSettings
        {
            ChatTemplates = templates,
            ChatTemplate = templates.GetValueOrDefault("default"),
            EosToken = TokenText(r, "eos_token", file),
            PadToken = TokenText(r, "pad_token", file),
            BosToken = TokenText(r, "bos_token", file),
            UnkToken = TokenText(r, "unk_token", file),
            AddBosToken = Bool(r, "add_bos_token", file),
            CleanUpTokenizationSpaces = Bool(r, "clean_up_tokenization_spaces", file),
            ModelMaxLength = MaxLength(r, file),
            TokenizerClass = r.TryGetProperty("tokenizer_class", out var tc) && tc.ValueKind == JsonValueKind.String ? tc.GetString() : null,
        };
    }

    /// <summary>A special-token field: a string, null, or an AddedToken object {"content": ...}.</summary>
    private static string? TokenText(JsonElement r, string name, string file)
    {
        if (!r.TryGetProperty(name, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
            _ => throw new CheckpointException(file, $"is {v.GetRawText()}, expected a string, null or {{\"content\": ...}}", field: name),
        };
    }

    private static bool Bool(JsonElement r, string name, string file)
    {
        if (!r.TryGetProperty(name, out var v)) return false;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False or JsonValueKind.Null => false,
            _ => throw new CheckpointException(file, $"is {v}, expected true or false", field: name),
        };
    }

    /// <summary>model_max_length; transformers writes 1e30 for "no limit", which becomes null.</summary>
    private static long? MaxLength(JsonElement r, string file)
    {
        if (!r.TryGetProperty("model_max_length", out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double d) || d < 0 || d != Math.Floor(d))
            throw new CheckpointException(file, $"is {v}, expected a non-negative integer", field: "model_max_length");
        return d >= long.MaxValue ? null : (long)d;
    }
}
