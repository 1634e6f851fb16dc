namespace Qwen2.Native.Text;

/// <summary>
/// Builds the tokenizer's contents from a GGUF file's <c>tokenizer.*</c> metadata, as llama.cpp's converter writes it
/// for Qwen: <c>tokenizer.ggml.model</c> "gpt2" (byte-level BPE), <c>tokenizer.ggml.pre</c> "qwen2", the token list,
/// their types and the merges, the special token ids, <c>add_bos_token</c> and <c>tokenizer.chat_template</c>.
/// </summary>
/// <remarks>
/// Token types are llama.cpp's: NORMAL (1) tokens are the BPE vocabulary; CONTROL (3) and USER_DEFINED (4) tokens are
/// Hugging Face's added tokens, matched whole before pre-tokenization (control ones flagged special); UNUSED (5) are the
/// "[PAD{id}]" rows the converter adds to fill the embedding, and no text encodes to them.
/// </remarks>
internal static class GgufTokenizerReader
{
    private const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5;

    public static TokenizerFiles Read(GgufFile file)
    {
        var m = file.MetadataReader;
        string path = file.Path;
        string model = m.String("tokenizer.ggml.model") ?? throw new CheckpointException(path, "is missing; the file carries no tokenizer", field: "tokenizer.ggml.model");
        if (model != "gpt2") throw new CheckpointException(path, $"is \"{model}\"; only \"gpt2\" (byte-level BPE, as Qwen uses) is supported", field: "tokenizer.ggml.model");
        string pre = m.String("tokenizer.ggml.pre") ?? throw new CheckpointException(path, "is missing; only the \"qwen2\" pre-tokenizer is supported", field: "tokenizer.ggml.pre");
        if (pre != "qwen2") throw new CheckpointException(path, $"is \"{pre}\"; only the \"qwen2\" pre-tokenizer is supported", field: "tokenizer.ggml.pre");
        string[] tokens = m.StringArray("tokenizer.ggml.tokens") ?? throw new CheckpointException(path, "is missing", field: "tokenizer.ggml.tokens");
        int[] types = m.IntArray("tokenizer.ggml.token_type") ?? Enumerable.Repeat(Normal, tokens.Length).ToArray();
        if (types.Length != tokens.Length)
            throw new CheckpointException(path, $"lists {types.Length} types for {tokens.Length} tokens", field: "tokenizer.ggml.token_type");

        var vocab = new List<KeyValuePair<string, int>>(tokens.Length);
        var added = new List<AddedToken>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int id = 0; id < tokens.Length; id++)
        {
            int type = types[id];
            if (type == Unused) continue;
            string token = tokens[id];
            if (token.Length == 0) throw new CheckpointException(path, $"token {id} is empty", field: "tokenizer.ggml.tokens");
            if (!seen.Add(token)) throw new CheckpointException(path, $"token '{token}' (id {id}) is listed twice", field: "tokenizer.ggml.tokens");
            switch (type)
            {
                case Normal or Unknown: vocab.Add(new(token, id)); break;
                case Control or UserDefined: added.Add(new AddedToken(id, token, Special: type == Control)); break;
                default: throw new CheckpointException(path, $"token {id} has type {type}; a gpt2 vocabulary has types 1 (normal), 3 (control), 4 (user-defined) and 5 (unused)", field: "tokenizer.ggml.token_type");
            }
        }
        if (vocab.Count == 0) throw new CheckpointException(path, "holds no normal tokens", field: "tokenizer.ggml.tokens");
        var merges = Merges(path, m.StringArray("tokenizer.ggml.merges") ?? throw new CheckpointException(path, "is missing", field: "tokenizer.ggml.merges"), vocab);

        int? Id(string key) => m.Integer(key, 0, tokens.Length - 1) is { } id ? (int)id : null;
        string? TokenText(string key) => Id(key) is { } id ? tokens[id] : null;
        string? template = m.String("tokenizer.chat_template");
        var settings = new TokenizerSettings
        {
            ChatTemplate = template,
            ChatTemplates = template is null ? new Dictionary<string, string>() : new Dictionary<string, string> { ["default"] = template },
            EosToken = TokenText("tokenizer.ggml.eos_token_id"),
            BosToken = TokenText("tokenizer.ggml.bos_token_id"),
            PadToken = TokenText("tokenizer.ggml.padding_token_id"),
            AddBosToken = m.Bool("tokenizer.ggml.add_bos_token") ?? false,
        };
        // llama.cpp's tokenizer with add_special: BOS before the text and EOS after it where the file asks for them.
        int[] Around(string flag, string idKey) =>
            m.Bool(flag) == true ? Id(idKey) is { } id ? [id] : throw new CheckpointException(path, $"is true but {idKey} is missing", field: flag) : [];
        return new TokenizerFiles
        {
            Vocab = vocab, Merges = merges, AddedTokens = added, Settings = settings,
            TemplatePrefix = Around("tokenizer.ggml.add_bos_token", "tokenizer.ggml.bos_token_id"),
            TemplateSuffix = Around("tokenizer.ggml.add_eos_token", "tokenizer.ggml.eos_token_id"),
        };
    }

    /// <summary>Each merge is "a b" with a, b and ab in the vocabulary, as <see cref="TokenizerFiles"/> checks tokenizer.json's.</summary>
    private static List<string> Merges(string path, string[] merges, List<KeyValuePair<string, int>> vocab)
    {
        var tokens = new HashSet<string>(vocab.Select(p => p.Key), StringComparer.Ordinal);
        for (int i = 0; i < merges.Length; i++)
        {
            var parts = merges[i].Split(' ');
            if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
                throw new CheckpointException(path, $"merge {i} is \"{merges[i]}\", expected two tokens separated by one space", field: "tokenizer.ggml.merges");
            foreach (var t in new[] { parts[0], parts[1], parts[0] + parts[1] })
                if (!tokens.Contains(t)) throw new CheckpointException(path, $"merge {i} uses token '{t}', which is not a normal token", field: "tokenizer.ggml.merges");
        }
        return [.. merges];
    }
}
