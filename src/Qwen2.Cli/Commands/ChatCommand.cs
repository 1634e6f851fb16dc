using Qwen2.Native.Chat;
using Qwen2.Native.Generation;
using Qwen2.Native.Text;

namespace Qwen2.Cli;

/// <summary><c>qwen2 chat</c>: a conversation read line by line from stdin, the KV cache kept across turns.</summary>
internal static class ChatCommand
{
    public static Command Create(TextReader stdin, TextWriter stdout, TextWriter stderr)
    {
        var model = CommonOptions.Model();
        var system = new Option<string?>("--system") { Description = "System prompt (default: the template's)." };
        var noThink = new Option<bool>("--no-think") { Description = "Qwen3: answer without reasoning first (the template's enable_thinking=false)." };
        var hideReasoning = new Option<bool>("--hide-reasoning") { Description = "Qwen3: do not show the reasoning (shown on stderr otherwise; stdout holds only the answer)." };
        var flags = new SamplingFlags();
        var cmd = new Command("chat", "Chat with the model: one line per message; /reset starts over, /exit (or end of input) quits.") { model, system, noThink, hideReasoning };
        foreach (var o in flags.All) cmd.Options.Add(o);
        cmd.SetAction(p => Guard.Run(stderr, () =>
        {
            string dir = CommonOptions.ResolveModel(p.GetValue(model));
            var tokenizer = Qwen2Tokenizer.Load(dir);
            using var m = flags.Load(p, dir);
            var pipeline = new Qwen2Pipeline(m, tokenizer);
            var options = flags.Options(p, pipeline.GenerationConfig);
            var chat = new ChatSession(pipeline, new ChatSessionOptions { SystemPrompt = p.GetValue(system), EnableThinking = !p.GetValue(noThink), Session = flags.Session(p, true) });
            bool showReasoning = !p.GetValue(hideReasoning);
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
                            bool reasoned = false;
                            foreach (var part in chat.SendParts(line, options, turn.Token))
                            {
                                if (showReasoning && part.Reasoning.Length > 0) { stderr.Write(part.Reasoning); stderr.Flush(); reasoned = true; }
                                if (part.Content.Length == 0) continue;
                                if (reasoned) { stderr.WriteLine(); reasoned = false; } // the answer starts on a line of its own
                                stdout.Write(part.Content);
                                stdout.Flush();
                            }
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
}
