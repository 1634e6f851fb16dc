using System.Globalization;
using System.Text.Json;
using Qwen2.Kernels;
using Qwen2.Native;
using Qwen2.Reference;

namespace Qwen2.Bench;

/// <summary>
/// Command-line tools over the references, for the CI's held-out checks of quantized files (tools/gguf/check.sh):
/// <code>
///   quantize-peer IN.gguf OUT.gguf TYPE [THREADS]        llama.cpp's quantizer (TYPE: q8_0, q4_0, q4_1, q5_0, q5_1, q4_k_m, q5_k_m, q6_k)
///   peer-logits FILE.gguf 1,2,3                          {"llama": [[...], ...], "reference": [[...], ...]}: llama.cpp's logits
///                                                        (flash attention off, F32 cache) and the float64 reference's on the
///                                                        dequantized weights, one row per position
///   synth-peer DIR HIDDEN LAYERS HEADS KV_HEADS INTER SEED   a random-weight F32 checkpoint with the Qwen2.5 tokenizer
///   hf-tokenize TOKENIZER.json CORPUS.json               Hugging Face's tokenizer (Tokenizers.DotNet): a JSON array of id arrays
///   synth-qwen3 DIR HIDDEN LAYERS HEADS KV_HEADS HEAD_DIM INTER VOCAB tied|untied bias|nobias DTYPE SEED [embedding]
///                                                        a random-weight Qwen3 checkpoint: VOCAB a number (no tokenizer: ids
///                                                        in, ids out), or a directory with tokenizer.json.gz and
///                                                        tokenizer_config.json (the released vocabulary, 151936, and those
///                                                        files copied in); with embedding, laid out as Qwen3-Embedding
///                                                        (base-model names, no head, sentence-transformers' files, and a
///                                                        tokenizer.json that appends <|endoftext|>)
///   reference-embed DIR CORPUS.json [DIMENSIONS]         {"tokens": [[...]], "embeddings": [[...]]}: each text tokenized by
///                                                        Hugging Face's tokenizer (special tokens added) and embedded by the
///                                                        float64 reference (last token, final norm, L2)
///   validate-json SCHEMA.json FILE.json                  exit 0 when FILE parses and validates against SCHEMA (JsonSchema.Net),
///                                                        else the errors and exit 1
///   reference-golden DIR 1,2,3 STEPS                     the float64 reference's golden file for a checkpoint (tools/golden's
///                                                        format: logits at every position, and STEPS greedy ids)
/// </code>
/// </summary>
internal static class PeerTools
{
    /// <summary>Runs a tool when <paramref name="args"/> names one; false when they are benchmark arguments.</summary>
    public static bool TryRun(string[] args, out int exitCode)
    {
        exitCode = 0;
        if (args.Length == 0 || args[0] is not ("quantize-peer" or "peer-logits" or "synth-peer" or "hf-tokenize" or "synth-qwen3" or "reference-golden" or "reference-embed" or "validate-json")) return false;
        try
        {
            return Run(args);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or InvalidDataException or IOException or FormatException)
        {
            // A clear line and exit 1 for the scripts, rather than .NET's unhandled-exception abort (exit 134).
            Console.Error.WriteLine($"{args[0]}: {e.Message}");
            exitCode = 1;
            return true;
        }
    }

    private static bool Run(string[] args)
    {
        string[] rest = args[1..];
        switch (args[0])
        {
            case "quantize-peer":
                Need(rest, 3, "quantize-peer IN.gguf OUT.gguf TYPE [THREADS]");
                LlamaCpp.Quantize(rest[0], rest[1], rest[2], rest.Length > 3 ? int.Parse(rest[3], CultureInfo.InvariantCulture) : Environment.ProcessorCount);
                Console.Error.WriteLine($"llama.cpp quantized {rest[0]} to {rest[2]}: {rest[1]} ({new FileInfo(rest[1]).Length:N0} bytes)");
                return true;
            case "peer-logits":
                Need(rest, 2, "peer-logits FILE.gguf 1,2,3");
                int[] ids = Ids(rest[1]);
                var llama = LlamaCpp.Logits(rest[0], ids).Select(r => r.Select(v => (double)v).ToArray()).ToArray();
                WriteLogits(("llama", llama), ("reference", ReferenceForward.Logits(ReferenceModel.FromGguf(rest[0]), ids)));
                return true;
            case "synth-peer":
                Need(rest, 7, "synth-peer DIR HIDDEN LAYERS HEADS KV_HEADS INTER SEED");
                Synthesize(rest);
                return true;
            case "hf-tokenize":
                Need(rest, 2, "hf-tokenize TOKENIZER.json CORPUS.json");
                var hf = new Tokenizers.DotNet.Tokenizer(vocabPath: rest[0]);
                var texts = JsonSerializer.Deserialize<string[]>(File.ReadAllText(rest[1])) ?? throw new InvalidDataException($"{rest[1]}: not a JSON array of strings");
                Console.WriteLine(JsonSerializer.Serialize(texts.Select(t => hf.Encode(t).Select(id => (int)id).ToArray()).ToArray()));
                return true;
            case "synth-qwen3":
                Need(rest, 12, "synth-qwen3 DIR HIDDEN LAYERS HEADS KV_HEADS HEAD_DIM INTER VOCAB tied|untied bias|nobias DTYPE SEED");
                SynthesizeQwen3(rest);
                return true;
            case "validate-json":
                Need(rest, 2, "validate-json SCHEMA.json FILE.json");
                Validate(rest[0], rest[1]);
                return true;
            case "reference-embed":
                Need(rest, 2, "reference-embed DIR CORPUS.json [DIMENSIONS]");
                WriteEmbeddings(rest[0], rest[1], rest.Length > 2 ? int.Parse(rest[2], CultureInfo.InvariantCulture) : null);
                return true;
            case "reference-golden":
                Need(rest, 3, "reference-golden DIR 1,2,3 STEPS");
                WriteGolden(rest[0], Ids(rest[1]), int.Parse(rest[2], CultureInfo.InvariantCulture));
                return true;
            default:
                return false;
        }
    }

    private static void Need(string[] rest, int count, string usage)
    {
        if (rest.Length < count) throw new ArgumentException($"usage: {usage}");
    }

    private static int[] Ids(string list) => list.Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();

    private static void WriteLogits(params (string Name, double[][] Rows)[] tables)
    {
        using var stdout = Console.OpenStandardOutput();
        using var w = new Utf8JsonWriter(stdout);
        w.WriteStartObject();
        foreach (var (name, rows) in tables)
        {
            w.WriteStartArray(name);
            foreach (var row in rows)
            {
                w.WriteStartArray();
                foreach (double v in row) w.WriteNumberValue(v);
                w.WriteEndArray();
            }
            w.WriteEndArray();
        }
        w.WriteEndObject();
    }

    private static void SynthesizeQwen3(string[] a)
    {
        int I(int i) => int.Parse(a[i], CultureInfo.InvariantCulture);
        bool tied = a[8] switch { "tied" => true, "untied" => false, _ => throw new ArgumentException($"'{a[8]}': expected tied or untied") };
        bool bias = a[9] switch { "bias" => true, "nobias" => false, _ => throw new ArgumentException($"'{a[9]}': expected bias or nobias") };
        var type = a[10].ToLowerInvariant() switch
        {
            "f32" => WeightType.F32, "bf16" => WeightType.BF16, "f16" => WeightType.F16,
            _ => throw new ArgumentException($"'{a[10]}': expected f32, bf16 or f16"),
        };
        // A tokenizer directory stands for the vocabulary every Qwen3 release declares (more rows than the tokenizer has ids).
        bool tokenizer = Directory.Exists(a[7]);
        int vocab = tokenizer ? SyntheticShape.Qwen3_0_6B.VocabSize : I(7);
        bool embedding = a.Length > 12 && (a[12] == "embedding" ? true : throw new ArgumentException($"'{a[12]}': expected embedding or nothing"));
        if (embedding && !tokenizer) throw new ArgumentException("an embedding checkpoint needs a tokenizer directory for VOCAB (its tokenizer appends <|endoftext|>)");
        var shape = new SyntheticShape(Path.GetFileName(Path.TrimEndingDirectorySeparator(a[0])), I(1), I(2), I(3), I(4), I(6), vocab, tied, 4096, "qwen3", I(5), bias, embedding);
        SyntheticCheckpoint.Write(a[0], shape, type, ulong.Parse(a[11], CultureInfo.InvariantCulture), overwrite: true);
        if (tokenizer) PeersModel.CopyTokenizer(a[0], a[7]);
        if (embedding)
        {
            // The template goes into a plain tokenizer.json, which Hugging Face's tokenizer reads as the engine does.
            string gz = Path.Combine(a[0], "tokenizer.json.gz"), json = Path.Combine(a[0], "tokenizer.json");
            using (var input = new System.IO.Compression.GZipStream(File.OpenRead(gz), System.IO.Compression.CompressionMode.Decompress))
            using (var output = File.Create(json))
                input.CopyTo(output);
            File.Delete(gz);
            SyntheticCheckpoint.AddEmbeddingTemplate(json);
        }
        Console.Error.WriteLine($"wrote {a[0]}: {shape}");
    }

    // The reference's logits at every position of the tokens, then its greedy continuation, each step's argmax over
    // the whole sequence so far (no cache: the reference has none).
    private static void WriteGolden(string directory, int[] tokens, int steps)
    {
        var model = ReferenceModel.FromCheckpoint(directory);
        var logits = ReferenceForward.Logits(model, tokens);
        var sequence = tokens.ToList();
        var greedy = new List<int>();
        for (int s = 0; s < steps; s++)
        {
            var all = s == 0 ? logits : ReferenceForward.Logits(model, sequence);
            int next = ReferenceForward.ArgMax(all[^1]);
            greedy.Add(next);
            sequence.Add(next);
        }
        using var stdout = Console.OpenStandardOutput();
        using var w = new Utf8JsonWriter(stdout);
        w.WriteStartObject();
        w.WriteString("model", Path.GetFileName(Path.TrimEndingDirectorySeparator(directory)));
        w.WriteString("reference", "the float64 reference (tests/Qwen2.Reference)");
        w.WriteStartArray("tokens");
        foreach (int t in tokens) w.WriteNumberValue(t);
        w.WriteEndArray();
        w.WriteStartArray("logits");
        foreach (var row in logits)
        {
            w.WriteStartArray();
            foreach (double v in row) w.WriteNumberValue(v);
            w.WriteEndArray();
        }
        w.WriteEndArray();
        w.WriteStartArray("greedy");
        foreach (int g in greedy) w.WriteNumberValue(g);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>Checks that <paramref name="file"/> parses and is valid for <paramref name="schemaFile"/>; throws with the errors otherwise (the tool then exits 1).</summary>
    private static void Validate(string schemaFile, string file)
    {
        var schema = Json.Schema.JsonSchema.FromText(File.ReadAllText(schemaFile));
        System.Text.Json.Nodes.JsonNode? value;
        try
        {
            value = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(file));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{file}: not JSON: {e.Message}", e);
        }
        var result = schema.Evaluate(value, new Json.Schema.EvaluationOptions { OutputFormat = Json.Schema.OutputFormat.List });
        if (!result.IsValid)
            throw new InvalidDataException($"{file} is not valid for {schemaFile}: " + string.Join("; ",
                result.Details.Where(d => d.Errors is { Count: > 0 }).Select(d => $"{d.InstanceLocation}: {string.Join(", ", d.Errors!.Values)}")));
    }

    private static void WriteEmbeddings(string directory, string corpus, int? dimensions)
    {
        var hf = new Tokenizers.DotNet.Tokenizer(vocabPath: Path.Combine(directory, "tokenizer.json"));
        var texts = JsonSerializer.Deserialize<string[]>(File.ReadAllText(corpus)) ?? throw new InvalidDataException($"{corpus}: not a JSON array of strings");
        var ids = texts.Select(t => hf.Encode(t).Select(id => (int)id).ToArray()).ToArray();
        var model = ReferenceModel.FromCheckpoint(directory);
        using var stdout = Console.OpenStandardOutput();
        using var w = new Utf8JsonWriter(stdout);
        w.WriteStartObject();
        w.WriteStartArray("tokens");
        foreach (var row in ids)
        {
            w.WriteStartArray();
            foreach (int id in row) w.WriteNumberValue(id);
            w.WriteEndArray();
        }
        w.WriteEndArray();
        w.WriteStartArray("embeddings");
        foreach (var row in ids)
        {
            w.WriteStartArray();
            foreach (double v in ReferenceForward.Embedding(model, row, dimensions)) w.WriteNumberValue(v);
            w.WriteEndArray();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void Synthesize(string[] a)
    {
        int I(int i) => int.Parse(a[i], CultureInfo.InvariantCulture);
        var shape = new SyntheticShape($"peer-h{I(1)}", I(1), I(2), I(3), I(4), I(5), SyntheticShape.Qwen2_0_5B.VocabSize, true, 4096);
        SyntheticCheckpoint.Write(a[0], shape, WeightType.F32, ulong.Parse(a[6], CultureInfo.InvariantCulture), overwrite: true);
        PeersModel.CopyTokenizer(a[0]);
        Console.Error.WriteLine($"wrote {a[0]}: {shape}");
    }
}
