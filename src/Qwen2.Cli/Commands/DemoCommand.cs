using System.Diagnostics;
using Qwen2.Kernels;
using Qwen2.Native.Text;

namespace Qwen2.Cli;

/// <summary>
/// <c>qwen2 demo</c>: synthesizes a Qwen2-0.5B-shaped checkpoint (no download), then times prefill and decode with and
/// without the KV cache, the comparison table of the original design, and checks both paths pick the same tokens.
/// </summary>
internal static class DemoCommand
{
    private const string PromptText =
        "The KV cache stores the keys and values of every token a transformer has already seen, so that generating the " +
        "next token costs one pass over the weights instead of a pass over the whole sequence. This demo measures how much " +
        "that saves on this machine, with random weights in the real shape of Qwen2-0.5B, and checks that both ways give the same tokens.";

    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var shape = new Option<string>("--shape") { Description = "Architecture to synthesize.", DefaultValueFactory = _ => "qwen2-0.5b" };
        var dtype = new Option<string>("--dtype") { Description = "Weight type: bf16, f16 or f32.", DefaultValueFactory = _ => "bf16" };
        var promptTokens = new Option<int>("--prompt-tokens") { Description = "Prompt length.", DefaultValueFactory = _ => 50 };
        var steps = new Option<int>("--steps") { Description = "Decode steps.", DefaultValueFactory = _ => 50 };
        var threads = new Option<int?>("--threads") { Description = "Threads (default: processor count)." };
        var dir = new Option<string?>("--dir") { Description = "Where the synthesized checkpoint is kept and reused (default: a folder under the user's cache directory)." };
        var model = new Option<string?>("--model", "-m") { Description = "Time this checkpoint (directory or hub id) instead of a synthesized one." };
        var cmd = new Command("demo", "Synthesize a Qwen2-0.5B-shaped checkpoint and print prefill and decode times with and without the KV cache.")
        {
            shape, dtype, promptTokens, steps, threads, dir, model,
        };
        cmd.SetAction(p => Guard.Run(stderr, () =>
        {
            int n = CommonOptions.AtLeast1(p.GetValue(promptTokens), "--prompt-tokens"), s = p.GetValue(steps);
            if (s < 2) throw new UsageException($"--steps must be at least 2, got {s}"); // the table shows steps 1 and 2
            int? t = CommonOptions.AtLeast1(p.GetValue(threads), "--threads");
            string checkpoint = p.GetValue(model) is { } m ? CommonOptions.ResolveModel(m) : Synthesize(p.GetValue(shape)!, p.GetValue(dtype)!, p.GetValue(dir), stderr);
            Run(checkpoint, n, s, t, stdout, stderr);
            return 0;
        }));
        return cmd;
    }

    /// <summary>
    /// The synthesized checkpoint the demo and <c>qwen2 bench</c> use, written once into the user's cache directory (or
    /// <paramref name="dir"/>) and reused; it carries the Qwen2.5 tokenizer, added if another tool wrote the weights alone.
    /// </summary>
    internal static string Synthesize(string shapeName, string dtypeName, string? dir, TextWriter log)
    {
        if (!SyntheticShape.TryGet(shapeName, out var shape))
            throw new UsageException($"--shape: unknown shape \"{shapeName}\"; expected one of {string.Join(", ", SyntheticShape.All.Select(x => x.Name))}");
        var dtype = SynthCommand.ParseDtype(dtypeName);
        string checkpoint = SyntheticCheckpointCache.GetOrCreate(shape, dtype, dir, log, SynthCommand.WriteTokenizer);
        // The benchmarks share this directory but cannot write the tokenizer (it is a CLI asset).
        if (!File.Exists(Path.Combine(checkpoint, Qwen2Tokenizer.TokenizerJsonFile))) SynthCommand.WriteTokenizer(checkpoint);
        return checkpoint;
    }

    private static void Run(string dir, int promptLength, int steps, int? threads, TextWriter stdout, TextWriter log)
    {
        using var model = Qwen2Model.Load(dir, new ModelOptions { Threads = threads });
        int vocab = model.Config.VocabSize;
        int[] prompt = Prompt(dir, promptLength, vocab);
        var logits = new float[vocab];
        var noCacheLogits = new float[vocab];

        // Warm-up: the same prefill and a cached step, so neither column is charged for JIT tiers or page faults.
        var warm = model.CreateCache(promptLength + 1);
        model.ForwardInto(prompt, warm, logits);
        model.ForwardInto([Activations.ArgMax(logits)], warm, logits);

        log.WriteLine($"timing {promptLength}-token prefill and {steps} greedy decode steps with the cache ...");
        var cache = model.CreateCache(promptLength + steps);
        var withCache = new double[steps + 1];
        var tokens = new List<int>(prompt);
        // The cached path's logits at every position, kept (outside the timing) for the comparison below.
        var cachedRows = new float[steps][];
        withCache[0] = Time(() => model.ForwardInto(prompt, cache, logits));
        for (int i = 1; i <= steps; i++)
        {
            cachedRows[i - 1] = logits.ToArray();
            int next = Activations.ArgMax(logits);
            tokens.Add(next);
            withCache[i] = Time(() => model.ForwardInto([next], cache, logits));
        }

        log.WriteLine($"... and without it (each step recomputes the whole sequence; this is the slow part) ...");
        var noCache = new double[steps + 1];
        float maxDiff = 0;
        int same = 0;
        noCache[0] = Time(() => model.ForwardInto(prompt, null, noCacheLogits));
        for (int i = 1; i <= steps; i++)
        {
            if (Activations.ArgMax(noCacheLogits) == tokens[promptLength + i - 1]) same++;
            maxDiff = Math.Max(maxDiff, MaxDiff(noCacheLogits, cachedRows[i - 1]));
            var seq = tokens.GetRange(0, promptLength + i).ToArray();
            noCache[i] = Time(() => model.ForwardInto(seq, null, noCacheLogits));
        }

        double cacheDecode = withCache.Skip(1).Sum(), noCacheDecode = noCache.Skip(1).Sum();
        var c = model.Config;
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Qwen2 checkpoint {Path.GetFileName(Path.TrimEndingDirectorySeparator(dir))}: {c.NumHiddenLayers} layers, hidden {c.HiddenSize}, vocab {c.VocabSize}, {model.WeightBytes / 1e9:F2} GB of {c.TorchDtype ?? "?"} weights"));
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{model.Threads} threads, {IsaSupport.Best} kernels, {Environment.ProcessorCount} logical processors"));
        stdout.WriteLine();
        stdout.WriteLine("| step | without cache | with cache | speedup |");
        stdout.WriteLine("| --- | ---: | ---: | ---: |");
        Row(stdout, $"prefill ({promptLength} tokens)", noCache[0], withCache[0]);
        Row(stdout, $"decode step 1 ({promptLength + 1} tokens in context)", noCache[1], withCache[1]);
        Row(stdout, $"decode step 2 ({promptLength + 2} tokens in context)", noCache[2], withCache[2]);
        Row(stdout, $"{steps} decode steps in total", noCacheDecode, cacheDecode);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| decode tokens/s | {steps / noCacheDecode:F2} | {steps / cacheDecode:F2} | |"));
        stdout.WriteLine();
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"with the cache, decode reads the weights at {model.DecodeBytesPerToken * steps / cacheDecode / 1e9:F1} GB/s; prefill runs at {promptLength / withCache[0]:F1} tokens/s."));
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"same greedy token with and without the cache at {same} of {steps} steps; largest logit difference {maxDiff:G3}."));
        if (same != steps) throw new InvalidOperationException($"the cached and uncached paths chose different tokens at {steps - same} of {steps} steps");
    }

    private static int[] Prompt(string dir, int length, int vocab)
    {
        int[] ids;
        if (File.Exists(Path.Combine(dir, Qwen2Tokenizer.TokenizerJsonFile)))
        {
            var tokenizer = Qwen2Tokenizer.Load(dir);
            var text = PromptText;
            ids = tokenizer.Encode(text);
            while (ids.Length < length) { text += " " + PromptText; ids = tokenizer.Encode(text); }
        }
        else ids = Enumerable.Range(0, length).Select(i => (int)((i * 2654435761L + 17) % vocab)).ToArray();
        return ids.Take(length).Select(i => i % vocab).ToArray();
    }

    private static double Time(Action a)
    {
        long t0 = Stopwatch.GetTimestamp();
        a();
        return Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }

    private static float MaxDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        float worst = 0;
        for (int i = 0; i < a.Length; i++) worst = MathF.Max(worst, MathF.Abs(a[i] - b[i]));
        return worst;
    }

    private static void Row(TextWriter w, string label, double without, double with) =>
        w.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {label} | {Ms(without)} | {Ms(with)} | {without / with:F1}x |"));

    private static string Ms(double seconds) => seconds >= 10 ? string.Create(CultureInfo.InvariantCulture, $"{seconds:F1} s") : string.Create(CultureInfo.InvariantCulture, $"{seconds * 1000:F0} ms");
}
