using System.Text;
using Microsoft.Extensions.AI;
using Qwen2.Native.Embeddings;
using Qwen2.Native.Generation;

namespace Qwen2.Cli;

/// <summary><c>qwen2 embed</c>: the embedding of each text (Qwen3-Embedding: last token, L2-normalised) as JSON.</summary>
internal static class EmbedCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var model = CommonOptions.Model();
        var text = new Option<string[]>("--text") { Description = "A text to embed; give it again for more.", AllowMultipleArgumentsPerToken = false };
        var jsonIn = new Option<string?>("--json-in") { Description = "File with a JSON array of strings to embed." };
        var dimensions = new Option<int?>("--dimensions") { Description = "Keep the first N dimensions and normalise again (Matryoshka; Qwen3-Embedding supports 32 up to its hidden size). Default: all." };
        var instruct = new Option<string?>("--instruct") { Description = "Embed the texts as queries of this task, in Qwen3-Embedding's format: \"Instruct: TASK\\nQuery:TEXT\" (documents take none)." };
        var promptName = new Option<string?>("--prompt-name") { Description = "Put this named prompt of the checkpoint's config_sentence_transformers.json (e.g. query) before each text." };
        var threads = new Option<int?>("--threads") { Description = "Threads (default: processor count)." };
        var batchTokens = new Option<int>("--batch-tokens") { Description = "Most tokens in one forward call.", DefaultValueFactory = _ => 2048 };
        var quantize = CommonOptions.Quantize();
        var cmd = new Command("embed",
            "Print the embedding of each text as JSON: {\"model\": ..., \"tokens\": [per text], \"embeddings\": [[...], ...]}. For embedding models such as " +
            "Qwen3-Embedding (last token's final hidden state, L2-normalised, as sentence-transformers computes it).")
        { model, text, jsonIn, dimensions, instruct, promptName, threads, batchTokens, quantize };
        cmd.SetAction(p => Guard.Run(stderr, () =>
        {
            string[] texts = p.GetValue(text) ?? [];
            string? file = p.GetValue(jsonIn), task = p.GetValue(instruct), prompt = p.GetValue(promptName);
            if ((texts.Length == 0) == (file is null)) throw new UsageException("give --text TEXT (once or more) or --json-in FILE");
            if (task is not null && prompt is not null) throw new UsageException("give --instruct or --prompt-name, not both");
            if (file is not null) texts = TokenizeCommand.ReadStrings(file);
            int? t = CommonOptions.AtLeast1(p.GetValue(threads), "--threads");
            int batch = CommonOptions.AtLeast1(p.GetValue(batchTokens), "--batch-tokens");
            using var pipeline = Qwen2Pipeline.FromPretrained(p.GetValue(model), new ModelOptions { Threads = t, Quantize = CommonOptions.ParseQuantize(p.GetValue(quantize)) });
            if (!pipeline.Model.IsEmbeddingModel)
                stderr.WriteLine($"note: {pipeline.Model.Directory} is a language model, not an embedding model; its last token's hidden state is printed, normalised");
            using var generator = new Qwen2EmbeddingGenerator(pipeline, batch);
            int? dims = p.GetValue(dimensions);
            if (dims is { } d && (d < 1 || d > generator.Dimensions)) throw new UsageException($"--dimensions must be from 1 to {generator.Dimensions} (the model's hidden size), got {d}");
            if (prompt is not null && !generator.Prompts.ContainsKey(prompt))
                throw new UsageException($"--prompt-name: \"{prompt}\" is not one of the model's prompts ({(generator.Prompts.Count == 0 ? "it has none" : string.Join(", ", generator.Prompts.Keys))})");
            string prefix = prompt is not null ? generator.Prompts[prompt] : "";
            var ids = texts.Select(x => generator.Tokenize(task is not null ? Qwen2EmbeddingGenerator.FormatQuery(task, x) : prefix + x)).ToArray();
            var vectors = generator.Embed(ids, dims); // an input too long for the model is an ArgumentException naming its index
            var leading = new StringBuilder("\"model\": ").Append(System.Text.Json.JsonSerializer.Serialize(generator.ModelId, CliJson.Default.String))
                .Append(", \"dimensions\": ").Append(dims ?? generator.Dimensions)
                .Append(", \"tokens\": [").AppendJoin(", ", ids.Select(i => i.Length)).Append("], ");
            LogitsCommand.WriteRowsJson("embeddings", vectors, stdout, leading.ToString());
            return 0;
        }));
        return cmd;
    }
}
