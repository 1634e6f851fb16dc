using System.CommandLine;
using System.Globalization;
using System.Text;
using Qwen2.Native;
using Qwen2.Native.Generation;
using Qwen2.Native.Chat;
using Qwen2.Native.Serving;
using Qwen2.Native.Text;

namespace Qwen2.Cli;

/// <summary><c>qwen2 generate</c> and <c>qwen2 chat</c>: sampling options shared by both.</summary>
internal static class GenerateCommand
{
    /// <summary>The sampling and stopping flags; null fields fall back to generation_config.json.</summary>
    internal sealed class SamplingFlags
    {
        public Option<int> MaxTokens { get; } = new("--max-tokens", "-n") { Description = "Most new tokens.", DefaultValueFactory = _ => 256 };
        public Option<double?> Temperature { get; } = new("--temperature", "-t") { Description = "Softmax temperature; 0 is greedy. Default: generation_config.json (greedy without one)." };
        public Option<int?> TopK { get; } = new("--top-k") { Description = "Keep the k most likely tokens (0: off)." };
        public Option<double?> TopP { get; } = new("--top-p") { Description = "Nucleus sampling mass in (0, 1] (1: off)." };
        public Option<double?> MinP { get; } = new("--min-p") { Description = "Drop tokens under this fraction of the top token's probability (0: off)." };
        public Option<double?> RepetitionPenalty { get; } = new("--repetition-penalty") { Description = "Penalty on tokens already in the context (1: off)." };
        public Option<ulong?> Seed { get; } = new("--seed", "-s") { Description = "Seed of the random draws: same seed, same tokens." };
        public Option<string[]> Stop { get; } = new("--stop") { Description = "Stop when the text contains this string (repeatable; the string is not printed).", AllowMultipleArgumentsPerToken = false };
        public Option<bool> IgnoreEos { get; } = new("--ignore-eos") { Description = "Keep generating past end-of-sequence tokens (as references that never stop at eos do); by default generation stops at them, as Hugging Face's generate does." };
        public Option<int?> Threads { get; } = new("--threads") { Description = "Threads (default: processor count)." };
        public Option<int?> Context { get; } = new("--context", "-c") { Description = "KV cache size in tokens (default: 4096, capped by max_position_embeddings)." };

        public IEnumerable<Option> All => [MaxTokens, Temperature, TopK, TopP, MinP, RepetitionPenalty, Seed, Stop, IgnoreEos, Threads, Context];

        public GenerationOptions Options(ParseResult p, Qwen2Model model)
        {
            var g = model.GenerationConfig;
            var baseSampling = g.ToSampling(p.GetValue(Seed));
            double? t = p.GetValue(Temperature);
            // An explicit temperature > 0 turns sampling on even when the checkpoint's default is greedy (do_sample false).
            var s = t is > 0 && baseSampling.IsGreedy
                ? new SamplingOptions { Temperature = t.Value, TopK = g.TopK, TopP = g.TopP, MinP = g.MinP, RepetitionPenalty = g.RepetitionPenalty, Seed = p.GetValue(Seed) }
                : baseSampling with { Temperature = t ?? baseSampling.Temperature };
            s = s with
            {
                TopK = p.GetValue(TopK) ?? s.TopK,
                TopP = p.GetValue(TopP) ?? s.TopP,
                MinP = p.GetValue(MinP) ?? s.MinP,
                RepetitionPenalty = p.GetValue(RepetitionPenalty) ?? s.RepetitionPenalty,
            };
            try
            {
                s.Validate();
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw new UsageException($"--{e.ParamName!.Replace('_', '-')}: {e.Message.Split(" (Parameter")[0]}");
            }
            int max = p.GetValue(MaxTokens);
            if (max < 0) throw new UsageException($"--max-tokens must be >= 0, got {max}");
            var stops = p.GetValue(Stop) ?? [];
            if (stops.Any(string.IsNullOrEmpty)) throw new UsageException("--stop: a stop string must not be empty");
            return new GenerationOptions { Sampling = s, MaxNewTokens = max, StopStrings = stops, IgnoreEos = p.GetValue(IgnoreEos) };
        }

        public Qwen2Model Load(ParseResult p, string model)
        {
            return Qwen2Model.Load(model, new ModelOptions { Threads = Program.AtLeast1(p.GetValue(Threads), "--threads") });
        }

        public SessionOptions Session(ParseResult p, bool useCache)
        {
            return new SessionOptions { UseCache = useCache, CacheCapacity = Program.AtLeast1(p.GetValue(Context), "--context") };
        }
    }

    public static Command Generate(TextWriter stdout, TextWriter stderr)
    {
        var model = Program.ModelOption();
        var prompt = new Option<string?>("--prompt", "-p") { Description = "The prompt text (sent through the chat template unless --raw)." };
        var tokens = new Option<string?>("--tokens") { Description = "Comma-separated prompt token ids instead of text (no template)." };
        var raw = new Option<bool>("--raw") { Description = "Send the prompt as it is, without the chat template." };
        var system = new Option<string?>("--system") { Description = "System prompt (default: the template's)." };
        var noCache = new Option<bool>("--no-cache") { Description = "Recompute the whole sequence for every token (for comparison; slow)." };
        var output = new Option<string>("--output", "-o") { Description = "text: stream the text; ids: print the generated ids as a JSON array.", DefaultValueFactory = _ => "text" };
        output.AcceptOnlyFromAmong("text", "ids");
        var flags = new SamplingFlags();
        var cmd = new Command("generate", "Generate a continuation of a prompt, streamed to stdout; speed goes to stderr.") { model, prompt, tokens, raw, system, noCache, output };
        foreach (var o in flags.All) cmd.Options.Add(o);
        cmd.SetAction(p => Program.Guard(stderr, () =>
        {
            string? text = p.GetValue(prompt), ids = p.GetValue(tokens);
            if ((text is null) == (ids is null)) throw new UsageException("give either --prompt TEXT or --tokens IDS");
            bool wantIds = p.GetValue(output) == "ids";
            string dir = Program.ResolveModel(p.GetValue(model));
            // The tokenizer is needed only for text in or text out: --tokens with --output ids runs on weights alone.
            Qwen2Tokenizer? tokenizer = text is not null || !wantIds ? Qwen2Tokenizer.Load(dir) : null;
            using var m = flags.Load(p, dir);
            var options = flags.Options(p, m);
            var session = new InferenceSession(m, flags.Session(p, !p.GetValue(noCache)));
            int[] promptIds;
            if (ids is not null)
            {
                if (p.GetValue(raw) || p.GetValue(system) is not null) throw new UsageException("--raw and --system apply to --prompt text, not to --tokens");
                promptIds = Program.ParseTokens(ids);
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
            if (tokenizer is not null && options.StopTokenIds is null) options = options with { StopTokenIds = TextGeneration.DefaultStopIds(m, tokenizer) };
            using var cancel = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cancel.Cancel(); };
            Console.CancelKeyPress += onCancel;
            try
            {
                if (wantIds)
                {
                    if (options.StopStrings.Count > 0) throw new UsageException("--stop works on text; with --output ids use the model's stop tokens");
                    var generated = session.Generate(promptIds, options, cancel.Token).ToList();
                    stdout.WriteLine(Json(generated));
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

    public static Command Chat(TextReader stdin, TextWriter stdout, TextWriter stderr)
    {
        var model = Program.ModelOption();
        var system = new Option<string?>("--system") { Description = "System prompt (default: the template's)." };
        var flags = new SamplingFlags();
        var cmd = new Command("chat", "Chat with the model: one line per message; /reset starts over, /exit (or end of input) quits.") { model, system };
        foreach (var o in flags.All) cmd.Options.Add(o);
        cmd.SetAction(p => Program.Guard(stderr, () =>
        {
            string dir = Program.ResolveModel(p.GetValue(model));
            var tokenizer = Qwen2Tokenizer.Load(dir);
            using var m = flags.Load(p, dir);
            var options = flags.Options(p, m);
            var chat = new ChatSession(m, tokenizer, new ChatSessionOptions { SystemPrompt = p.GetValue(system), Session = flags.Session(p, true) });
            stderr.WriteLine($"{Path.GetFileName(Path.TrimEndingDirectorySeparator(dir))}: {m.Config.NumHiddenLayers} layers, {chat.Template.Family} template. /reset starts over, /exit quits.");
            CancellationTokenSource? turn = null;
            ConsoleCancelEventHandler onCancel = (_, e) => { if (turn is { IsCancellationRequested: false }) { e.Cancel = true; turn.Cancel(); } };
            Console.CancelKeyPress += onCancel;
            try
            {
                while (true)
                {
                    stdout.Write("> ");
                    stdout.Flush();
                    string? line = stdin.ReadLine();
                    if (line is null || line.Trim() == "/exit") break;
                    if (line.Trim() == "/reset") { chat.Reset(); stderr.WriteLine("(conversation reset)"); continue; }
                    if (line.Length == 0) continue;
                    using (turn = new CancellationTokenSource())
                    {
                        try
                        {
                            foreach (var piece in chat.Send(line, options, turn.Token)) { stdout.Write(piece); stdout.Flush(); }
                        }
                        catch (OperationCanceledException)
                        {
                            stderr.WriteLine(" (interrupted)");
                        }
                        catch (CacheFullException e)
                        {
                            stderr.WriteLine($"error: {e.Message}; /reset to start over or raise --context");
                        }
                    }
                    turn = null;
                    stdout.WriteLine();
                    if (chat.LastStats is { } stats) stderr.WriteLine(stats.ToString());
                }
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }
            return 0;
        }));
        return cmd;
    }

    public static Command Tokenize(TextWriter stdout, TextWriter stderr)
    {
        var model = Program.ModelOption();
        var text = new Option<string?>("--text") { Description = "Text to encode; prints a JSON array of ids." };
        var jsonIn = new Option<string?>("--json-in") { Description = "File with a JSON array of strings; prints a JSON array of id arrays." };
        var cmd = new Command("tokenize", "Encode text with the checkpoint's tokenizer (only tokenizer.json and tokenizer_config.json are needed).") { model, text, jsonIn };
        cmd.SetAction(p => Program.Guard(stderr, () =>
        {
            string? t = p.GetValue(text), file = p.GetValue(jsonIn);
            if ((t is null) == (file is null)) throw new UsageException("give either --text TEXT or --json-in FILE");
            var tokenizer = Qwen2Tokenizer.Load(Program.ResolveModel(p.GetValue(model)));
            if (t is not null)
            {
                stdout.WriteLine(Json(tokenizer.Encode(t)));
                return 0;
            }
            if (!File.Exists(file)) throw new UsageException($"--json-in: file not found: {file}");
            string[] inputs;
            try
            {
                inputs = System.Text.Json.JsonSerializer.Deserialize(File.ReadAllText(file!), CliJson.Default.StringArray)
                    ?? throw new UsageException($"--json-in {file}: expected a JSON array of strings, got null");
            }
            catch (System.Text.Json.JsonException e)
            {
                throw new UsageException($"--json-in {file}: expected a JSON array of strings: {e.Message}");
            }
            var sb = new StringBuilder("[");
            for (int i = 0; i < inputs.Length; i++)
            {
                if (inputs[i] is null) throw new UsageException($"--json-in {file}: item {i} is null, not a string");
                sb.Append(i == 0 ? "" : ", ").Append(Json(tokenizer.Encode(inputs[i])));
            }
            stdout.WriteLine(sb.Append(']').ToString());
            return 0;
        }));
        return cmd;
    }

    private static string Json(IEnumerable<int> ids) => "[" + string.Join(", ", ids.Select(i => i.ToString(CultureInfo.InvariantCulture))) + "]";
}

/// <summary>Source-generated JSON contracts (no reflection, so the AOT build stays warning-free).</summary>
[System.Text.Json.Serialization.JsonSerializable(typeof(string[]))]
internal sealed partial class CliJson : System.Text.Json.Serialization.JsonSerializerContext;
