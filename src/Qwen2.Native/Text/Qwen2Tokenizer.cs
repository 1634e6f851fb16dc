using System.Text;
using Microsoft.ML.Tokenizers;

namespace Qwen2.Native.Text;

/// <summary>
/// The byte-level BPE tokenizer of Qwen2, Qwen2.5 and Qwen3, read from a checkpoint's tokenizer.json and
/// tokenizer_config.json, giving the same ids as Hugging Face's tokenizers.
/// </summary>
/// <remarks>
/// The BPE merges run in Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/> (byte-level, with its word cache), fed by
/// <see cref="Qwen2PreTokenizer"/>. The other steps are written here because ML.Tokenizers does them differently from
/// Hugging Face: it normalizes the whole text before finding special tokens (HF finds added tokens first, in the
/// original text: NFC can fuse <c>&gt;</c> + U+0338 into U+226F and destroy <c>&lt;|im_end|&gt;</c>), its regex
/// pre-tokenizer classifies UTF-16 code units, and its decoder neither drops exactly the tokens flagged special nor
/// follows HF's byte-level rule for added tokens. Instances are immutable and safe to use from several threads.
/// </remarks>
public sealed class Qwen2Tokenizer
{
    /// <summary>File name of the tokenizer definition in a checkpoint directory.</summary>
    public const string TokenizerJsonFile = "tokenizer.json";

    /// <summary>File name of the optional tokenizer settings in a checkpoint directory.</summary>
    public const string TokenizerConfigFile = "tokenizer_config.json";

    private readonly BpeTokenizer _bpe;
    private readonly Normalizer _normalizer;
    private readonly Dictionary<string, int> _tokenToId;
    private readonly string?[] _idToToken;
    private readonly byte[]?[] _idToBytes;
    private readonly bool[] _special;
    private readonly AddedTokenMatcher _rawMatcher, _normalizedMatcher;

    private Qwen2Tokenizer(TokenizerFiles files, Normalizer normalizer)
    {
        _normalizer = normalizer;
        Settings = files.Settings;
        AddedTokens = files.AddedTokens.AsReadOnly();
        SpecialPrefix = files.TemplatePrefix.AsReadOnly();
        SpecialSuffix = files.TemplateSuffix.AsReadOnly();
        _bpe = BpeTokenizer.Create(new BpeOptions(files.Vocab)
        {
            Merges = files.Merges,
            ByteLevel = true,
            PreTokenizer = Qwen2PreTokenizer.Instance,
        });

        int maxId = Math.Max(files.Vocab.Max(p => p.Value), files.AddedTokens.Count == 0 ? -1 : files.AddedTokens.Max(t => t.Id));
        VocabSize = maxId + 1;
        _idToToken = new string?[VocabSize];
        _idToBytes = new byte[]?[VocabSize];
        _special = new bool[VocabSize];
        _tokenToId = new Dictionary<string, int>(files.Vocab.Count + files.AddedTokens.Count, StringComparer.Ordinal);
        foreach (var (token, id) in files.Vocab) { _idToToken[id] = token; _tokenToId[token] = id; }
        foreach (var t in files.AddedTokens) { _idToToken[t.Id] = t.Content; _tokenToId[t.Content] = t.Id; _special[t.Id] = t.Special; }
        for (int id = 0; id < VocabSize; id++)
            if (_idToToken[id] is { } token) _idToBytes[id] = ByteLevel.TokenToBytes(token);

        _rawMatcher = new AddedTokenMatcher(files.AddedTokens.Where(t => !t.Normalized), s => s);
        _normalizedMatcher = new AddedTokenMatcher(files.AddedTokens.Where(t => t.Normalized), normalizer.Normalize);
    }

    /// <summary>
    /// Loads tokenizer.json (or tokenizer.json.gz) and, if present, tokenizer_config.json from <paramref name="directory"/>;
    /// when <paramref name="directory"/> is a <c>.gguf</c> file, the tokenizer in its metadata (<see cref="FromGguf(string)"/>).
    /// </summary>
    /// <exception cref="CheckpointException">A file is missing or malformed; the message names it and the field at fault.</exception>
    public static Qwen2Tokenizer Load(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (File.Exists(directory) && GgufFile.HasMagic(directory)) return FromGguf(directory);
        string json = Path.Combine(directory, TokenizerJsonFile);
        if (!File.Exists(json) && File.Exists(json + ".gz")) json += ".gz";
        if (!File.Exists(json))
            throw new CheckpointException(json, Directory.Exists(directory) ? $"file not found (nor {TokenizerJsonFile}.gz)" : $"directory '{directory}' not found");
        string config = Path.Combine(directory, TokenizerConfigFile);
        return FromFiles(json, File.Exists(config) ? config : null);
    }

    /// <summary>Loads the given tokenizer.json (plain or gzip) and optional tokenizer_config.json.</summary>
    /// <exception cref="CheckpointException">A file is missing or malformed; the message names it and the field at fault.</exception>
    public static Qwen2Tokenizer FromFiles(string tokenizerJsonPath, string? tokenizerConfigPath)
    {
        ArgumentNullException.ThrowIfNull(tokenizerJsonPath);
        using var json = OpenFile(tokenizerJsonPath);
        using var config = tokenizerConfigPath is null ? null : OpenFile(tokenizerConfigPath);
        return Create(json, config, tokenizerJsonPath, tokenizerConfigPath ?? "");
    }

    /// <summary>Loads tokenizer.json (plain or gzip) and optional tokenizer_config.json from streams; <paramref name="sourceName"/> names them in errors.</summary>
    /// <exception cref="CheckpointException">The content is malformed; the message names the source and the field at fault.</exception>
    public static Qwen2Tokenizer FromStreams(Stream tokenizerJson, Stream? tokenizerConfig, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(tokenizerJson);
        ArgumentNullException.ThrowIfNull(sourceName);
        return Create(tokenizerJson, tokenizerConfig, Path.Combine(sourceName, TokenizerJsonFile), Path.Combine(sourceName, TokenizerConfigFile));
    }

    /// <summary>
    /// The tokenizer and chat template a GGUF file's metadata carries (<c>tokenizer.ggml.*</c>, <c>tokenizer.chat_template</c>),
    /// giving the same ids as the Hugging Face tokenizer it was converted from.
    /// </summary>
    /// <exception cref="CheckpointException">The file is malformed, or its tokenizer is not Qwen's byte-level BPE; the message names the key.</exception>
    public static Qwen2Tokenizer FromGguf(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var file = GgufFile.Open(path);
        return FromGguf(file);
    }

    /// <summary>The tokenizer in an open GGUF file's metadata (see <see cref="FromGguf(string)"/>).</summary>
    /// <exception cref="CheckpointException">The tokenizer metadata is missing or malformed; the message names the key.</exception>
    public static Qwen2Tokenizer FromGguf(GgufFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        return new(GgufTokenizerReader.Read(file), NfcNormalizer.Instance);
    }

    internal static Qwen2Tokenizer Create(Stream json, Stream? config, string jsonName, string configName, Normalizer? normalizer = null) =>
        new(TokenizerFiles.Read(json, config, jsonName, configName), normalizer ?? NfcNormalizer.Instance);

    private static FileStream OpenFile(string path)
    {
        try
        {
            return File.OpenRead(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new CheckpointException(path, "file not found", inner: e);
        }
    }

    /// <summary>Number of ids: the highest token id plus one.</summary>
    public int VocabSize { get; }

    /// <summary>The added tokens of tokenizer.json (for Qwen: <c>&lt;|endoftext|&gt;</c>, <c>&lt;|im_start|&gt;</c>, ...), in file order.</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>The settings from tokenizer_config.json (defaults when there was none).</summary>
    public TokenizerSettings Settings { get; }

    /// <summary>
    /// Ids <see cref="Encode(string, bool)"/> with <c>addSpecialTokens</c> puts before the text: those of tokenizer.json's
    /// TemplateProcessing post-processor, or a GGUF file's BOS where <c>add_bos_token</c> is set. Empty for Qwen2, Qwen2.5 and Qwen3.
    /// </summary>
    public IReadOnlyList<int> SpecialPrefix { get; }

    /// <summary>
    /// Ids <see cref="Encode(string, bool)"/> with <c>addSpecialTokens</c> puts after the text: Qwen3-Embedding's
    /// <c>&lt;|endoftext|&gt;</c> (its TemplateProcessing post-processor, or a GGUF file's EOS where <c>add_eos_token</c> is set).
    /// </summary>
    public IReadOnlyList<int> SpecialSuffix { get; }

    /// <summary>
    /// The ids of <paramref name="text"/>, as Hugging Face's <c>tokenizer(text, add_special_tokens=False)["input_ids"]</c>
    /// (what chat templates are tokenized with): no BOS or EOS added. For Qwen2, Qwen2.5 and Qwen3 tokenizers this is
    /// also <c>tokenizer(text)</c>; Qwen3-Embedding's appends <c>&lt;|endoftext|&gt;</c> there (see <see cref="Encode(string, bool)"/>).
    /// Unpaired surrogates count as U+FFFD, which is what converting the text to UTF-8 makes of them.
    /// </summary>
    /// <exception cref="InvalidOperationException">The text needs NFC normalization and this runtime runs in globalization-invariant mode.</exception>
    public int[] Encode(string text) => Encode(text, addSpecialTokens: false);

    /// <summary>
    /// The ids of <paramref name="text"/>; with <paramref name="addSpecialTokens"/>, between <see cref="SpecialPrefix"/>
    /// and <see cref="SpecialSuffix"/>, as Hugging Face's <c>tokenizer(text)["input_ids"]</c> (and llama.cpp's
    /// tokenizer with <c>add_special</c>) give them.
    /// </summary>
    /// <exception cref="InvalidOperationException">The text needs NFC normalization and this runtime runs in globalization-invariant mode.</exception>
    public int[] Encode(string text, bool addSpecialTokens)
    {
        var ids = EncodeText(text);
        if (!addSpecialTokens || (SpecialPrefix.Count == 0 && SpecialSuffix.Count == 0)) return ids;
        return [.. SpecialPrefix, .. ids, .. SpecialSuffix];
    }

    private int[] EncodeText(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length == 0) return [];
        text = ReplaceLoneSurrogates(text);
        var ids = new List<int>(text.Length / 3 + 4);
        // Added tokens that skip normalization are cut out first; the text between them is NFC-normalized, then the
        // normalized added tokens are cut out of it, and what is left goes through pre-tokenization and BPE.
        SplitOnAddedTokens(_rawMatcher, text, ids, (t, start, length) =>
        {
            string normalized = _normalizer.Normalize(t.Substring(start, length));
            SplitOnAddedTokens(_normalizedMatcher, normalized, ids, (u, pieceStart, pieceLength) =>
                ids.AddRange(_bpe.EncodeToIds(u.AsSpan(pieceStart, pieceLength), considerPreTokenization: true, considerNormalization: false)));
        });
        return ids.ToArray();
    }

    private static void SplitOnAddedTokens(AddedTokenMatcher matcher, string text, List<int> ids, Action<string, int, int> between)
    {
        int pos = 0;
        foreach (var m in matcher.Find(text))
        {
            if (m.Start > pos) between(text, pos, m.Start - pos);
            ids.Add(m.Id);
            pos = m.End;
        }
        if (text.Length > pos) between(text, pos, text.Length - pos);
    }

    /// <summary>
    /// The text of <paramref name="ids"/> as Hugging Face decodes it: token bytes joined and read as UTF-8 with invalid
    /// sequences as U+FFFD, no space clean-up. With <paramref name="skipSpecialTokens"/>, tokens flagged special are left
    /// out; added tokens not flagged special (Qwen2.5's <c>&lt;tool_call&gt;</c>) stay.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is not a token of this vocabulary.</exception>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
    {
        var bytes = new List<byte>(ids.Length * 4);
        foreach (int id in ids)
        {
            var b = TokenBytes(id);
            if (!(skipSpecialTokens && _special[id])) bytes.AddRange(b);
        }
        return Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes));
    }

    /// <summary>A decoder for ids arriving one at a time, which holds back incomplete UTF-8 characters.</summary>
    public StreamingDecoder CreateStreamingDecoder(bool skipSpecialTokens = false) => new(this, skipSpecialTokens);

    /// <summary>The id of <paramref name="token"/> in its vocabulary form (byte-level, e.g. "Ġworld") or of an added token, or null.</summary>
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        return _tokenToId.TryGetValue(token, out int id) ? id : null;
    }

    /// <summary>The vocabulary form of <paramref name="id"/> (byte-level, e.g. "Ġworld", or an added token's text), or null if no token has it.</summary>
    public string? IdToToken(int id) => (uint)id < (uint)VocabSize ? _idToToken[id] : null;

    /// <summary>Whether <paramref name="id"/> is an added token flagged special (false for any other id).</summary>
    public bool IsSpecial(int id) => (uint)id < (uint)VocabSize && _special[id];

    /// <summary>The bytes <paramref name="id"/> decodes to: UTF-8, though a token may hold only part of a character.</summary>
    /// <exception cref="ArgumentOutOfRangeException">No token of this vocabulary has the id.</exception>
    public ReadOnlySpan<byte> GetTokenBytes(int id) => TokenBytes(id);

    /// <summary>The bytes <paramref name="id"/> decodes to; empty for an id no token has (a padding row of the model's vocabulary).</summary>
    internal ReadOnlySpan<byte> TokenBytesOrEmpty(int id) => (uint)id < (uint)VocabSize && _idToBytes[id] is { } bytes ? bytes : [];

    /// <summary>The bytes <paramref name="id"/> decodes to.</summary>
    internal byte[] TokenBytes(int id)
    {
        if ((uint)id >= (uint)VocabSize || _idToBytes[id] is not { } bytes)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"token id {id} is not in the vocabulary (ids 0..{VocabSize - 1})");
        return bytes;
    }

    private static string ReplaceLoneSurrogates(string text)
    {
        // Fast path: well-formed UTF-16 (almost always) is returned as is.
        if (Utf16IsWellFormed(text)) return text;
        var sb = new StringBuilder(text.Length);
        foreach (var r in text.EnumerateRunes()) sb.Append(r.ToString()); // EnumerateRunes yields U+FFFD for lone surrogates
        return sb.ToString();
    }

    private static bool Utf16IsWellFormed(string s)
    {
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (!char.IsSurrogate(c)) continue;
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { i++; continue; }
            return false;
        }
        return true;
    }
}
