using Qwen2.Native.Generation;
using Qwen2.Native.Chat;
using Qwen2.Native.Serving;
using Qwen2.Native.Structured;
using Qwen2.Native.Text;

namespace Qwen2.Cli;

/// <summary><c>qwen2 generate</c>: a continuation of a prompt, streamed as text or printed as token ids.</summary>
internal static class GenerateCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var model = CommonOptions.Model();
        var prompt = new Option<string?>("--prompt", "-p") { Description = "The prompt text (sent through the chat template unless --raw)." };
        var tokens = new Option<string?>("--tokens") { Description = "Comma-separated prompt token ids instead of text (no template)." };
        var raw = new Option<bool>("--raw") { Description = "Send the prompt as it is, without the chat template." };
        var system = new Option<string?>("--system") { Description = "System prompt (default: the template's)." };
        var noCache = new Option<bool>("--no-cache") { Description = "Recompute the whole sequence for every token (for comparison; slow)." };
        var output = new Option<string>("--output", "-o") { Description = "text: stream the text; ids: print the generated ids as a JSON array.", DefaultValueFactory = _ => "text" };
        output.AcceptOnlyFromAmong("text", "ids");
        var jsonSchema = new Option<string?>("--json-schema") { Description = "Constrain the output to JSON valid for the JSON Schema in this file (see README: the supported subset).", HelpName = "FILE" };
        var json = new Option<bool>("--json") { Description = "Constrain the output to a JSON object." };
        var flags = new SamplingFlags();
        var cmd = new Command("generate", "Generate a continuation of a prompt, streamed to stdout; speed goes to stderr.") { model, prompt, tokens, raw, system, noCache, output, jsonSchema, json };
        foreach (var o in flags.All) cmd.Options.Add(o);
        cmd.SetAction(p => Guard.Run(stderr, () =>
        {
            string? text = p.GetValue(prompt), ids = p.GetValue(tokens);
            if ((text is null) == (ids is null)) throw new UsageException("give either --prompt TEXT or --tokens IDS");
            bool wantIds = p.GetValue(output) == "ids";
            var format = ResponseFormatOf(p.GetValue(jsonSchema), p.GetValue(json)); // a bad schema fails before the model loads
            string dir = CommonOptions.ResolveModel(p.GetValue(model));
            // The tokenizer is needed only for text in or text out, or for the vocabulary a JSON format is matched
            // against: --tokens with --output ids runs on weights alone.
            Qwen2Tokenizer? tokenizer = text is not null || !wantIds || format.Kind != ResponseFormatKind.Text ? Qwen2Tokenizer.Load(dir) : null;
            using var m = flags.Load(p, dir);
            var options = flags.Options(p, m.IsGguf ? new GenerationConfig() : GenerationConfig.Load(m.Directory)); // GGUF has no generation_config.json
            options = options with { ResponseFormat = format };
            var session = new InferenceSession(m, flags.Session(p, !p.GetValue(noCache))) { Tokenizer = tokenizer };
            int[] promptIds;
            if (ids is not null)
            {
                if (p.GetValue(raw) || p.GetValue(system) is not null) throw new UsageException("--raw and --system apply to --prompt text, not to --tokens");
                promptIds = TokenIds.Parse(ids);
            }
            else if (p.GetValue(raw)) promptIds = tokenizer!.Encode(text!);
            else
            {
                var template = ChatTemplate.Parse(tokenizer!.Settings.ChatTemplate, Qwen2Tokenizer.TokenizerConfigFile);
                var messages = new List<ChatMessage>();
                if (p.GetValue(system) is { } sys) messages.Add(ChatMessage.System(sys));
                messages.Add(ChatMessage.User(text!));
                promptIds = tokenizer.Encode(template.Render(messages));
            }
            if (tokenizer is not null && options.StopTokenIds is null) options = options with { StopTokenIds = new Qwen2Pipeline(m, tokenizer).TextStopTokenIds };
            using var cancel = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cancel.Cancel(); };
            Console.CancelKeyPress += onCancel;
            try
            {
                if (wantIds)
                {
                    if (options.StopStrings.Count > 0) throw new UsageException("--stop works on text; with --output ids use the model's stop tokens");
                    var generated = session.Generate(promptIds, options, cancel.Token).ToList();
                    stdout.WriteLine(TokenIds.ToJson(generated));
                }
                else
                {
                    foreach (var piece in session.GenerateText(tokenizer!, promptIds, options, cancel.Token))
                    {
                        stdout.Write(piece);
                        stdout.Flush();
                    }
                    stdout.WriteLine();
                }
            }
            catch (OperationCanceledException)
            {
                stdout.WriteLine();
                stderr.WriteLine("(interrupted)");
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }
            stdout.Flush();
            if (session.LastStats is { } stats) stderr.WriteLine(stats.ToString());
            return 0;
        }));
        return cmd;
    }

    /// <summary>The format --json-schema FILE or --json asks for; a missing or unsupported schema is a usage error naming the file and the JSON path.</summary>
    private static ResponseFormat ResponseFormatOf(string? schemaFile, bool jsonObject)
    {
        if (schemaFile is not null && jsonObject) throw new UsageException("give either --json-schema FILE or --json, not both");
        if (jsonObject) return ResponseFormat.JsonObject;
        if (schemaFile is null) return ResponseFormat.Text;
        string schema;
        try { schema = File.ReadAllText(schemaFile); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new UsageException($"--json-schema {schemaFile}: cannot read the file ({e.Message})"); }
        try { return ResponseFormat.JsonSchema(schema); }
        catch (JsonSchemaException e) { throw new UsageException($"--json-schema {schemaFile}: {e.Message}"); }
    }
}
