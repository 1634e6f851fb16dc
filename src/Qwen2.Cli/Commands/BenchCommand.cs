using System.Diagnostics;
using Qwen2.Kernels;

namespace Qwen2.Cli;

/// <summary>
/// <c>qwen2 bench</c>: load time, prefill and decode speed with the KV cache, and decode's weight reads against the
/// machine's read bandwidth, measured by the same process on the same threads, so the fraction compares like with like.
/// </summary>
internal static class BenchCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var model = CommonOptions.Model();
        model.Description = "Checkpoint directory or Hugging Face hub id to time. Default: the demo's synthesized Qwen2-0.5B BF16 checkpoint (written once under ~/.cache/qwen2managed).";
        var promptTokens = new Option<int>("--prompt-tokens") { Description = "Prompt length for the prefill measurement.", DefaultValueFactory = _ => 64 };
        var genTokens = new Option<int>("--gen-tokens") { Description = "Greedy decode steps timed.", DefaultValueFactory = _ => 128 };
        var threads = new Option<int?>("--threads") { Description = "Threads for the model and the bandwidth probe (default: processor count)." };
        var repeat = new Option<int>("--repeat") { Description = "Times prefill and decode are run; the median is reported, with min and max.", DefaultValueFactory = _ => 1 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of a table." };
        var bandwidthMib = new Option<int>("--bandwidth-mib")
        {
            Description = "MiB the read-bandwidth probe reads per pass; keep it many times the last-level cache.",
            DefaultValueFactory = _ => (int)(MemoryBandwidth.DefaultBufferBytes >> 20),
        };
        var batch = new Option<string?>("--batch")
        {
            Description = "Also time batched decode: comma-separated batch sizes (for example 1,2,4,8,16). Each batch holds sequences " +
                "with prompts of about 1/2, 3/4, 1 and 5/4 times --prompt-tokens in a paged KV cache and decodes --gen-tokens steps; " +
                "reports total tokens/s, the speed-up over batch 1, and KV memory paged against padded.",
        };
        var quantize = CommonOptions.Quantize();
        var cmd = new Command("bench", "Measure load time, prefill and decode tokens/s, and decode's weight reads against this machine's read bandwidth.")
        {
            model, promptTokens, genTokens, threads, repeat, json, bandwidthMib, batch, quantize,
        };
        cmd.SetAction(p => Guard.Run(stderr, () =>
        {
            var settings = new Settings(
                CommonOptions.AtLeast1(p.GetValue(promptTokens), "--prompt-tokens"),
                CommonOptions.AtLeast1(p.GetValue(genTokens), "--gen-tokens"),
                CommonOptions.AtLeast1(p.GetValue(threads), "--threads"),
                CommonOptions.AtLeast1(p.GetValue(repeat), "--repeat"),
                CommonOptions.AtLeast1(p.GetValue(bandwidthMib), "--bandwidth-mib"),
                ParseBatches(p.GetValue(batch)),
                CommonOptions.ParseQuantize(p.GetValue(quantize)));
            string checkpoint = p.GetValue(model) is { } m ? CommonOptions.ResolveModel(m) : DemoCommand.Synthesize("qwen2-0.5b", "bf16", null, stderr);
            var report = Measure(checkpoint, settings, stderr);
            if (p.GetValue(json)) stdout.WriteLine(System.Text.Json.JsonSerializer.Serialize(report, BenchJsonContext.Default.BenchReport));
            else WriteTable(report, stdout);
            stdout.Flush();
            return 0;
        }));
        return cmd;
    }

    private sealed record Settings(int PromptTokens, int GenTokens, int? Threads, int Repeat, int BandwidthMib, int[] Batches, Qwen2.Kernels.WeightType? Quantize);

    private static int[] ParseBatches(string? text)
    {
        if (text is null) return [];
        var sizes = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n < 1 || n > 1024)
                throw new ArgumentException($"--batch: '{part}' is not a batch size between 1 and 1024 (give sizes like 1,2,4,8,16)");
            sizes.Add(n);
        }
        return sizes.Distinct().ToArray();
    }

    private static BenchReport Measure(string dir, Settings s, TextWriter log)
    {
        long t0 = Stopwatch.GetTimestamp();
        using var model = Qwen2Model.Load(dir, new ModelOptions { Threads = s.Threads, Quantize = s.Quantize });
        double loadMs = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;

        var c = model.Config;
        int[] prompt = Enumerable.Range(0, s.PromptTokens).Select(i => (int)((i * 2654435761L + 17) % c.VocabSize)).ToArray();
        var logits = new float[c.VocabSize];
        var cache = model.CreateCache(s.PromptTokens + s.GenTokens);

        // Warm-up: one prefill and a few cached steps, so no run is charged for JIT tiers or first page faults.
        model.ForwardInto(prompt, cache, logits);
        for (int i = 0; i < Math.Min(s.GenTokens, 4); i++) model.ForwardInto([Activations.ArgMax(logits)], cache, logits);

        log.WriteLine($"timing {s.PromptTokens}-token prefill and {s.GenTokens} greedy decode steps, {s.Repeat} time(s) ...");
        var prefill = new double[s.Repeat];
        var decode = new double[s.Repeat];
        for (int r = 0; r < s.Repeat; r++)
        {
            cache.Reset();
            long p0 = Stopwatch.GetTimestamp();
            model.ForwardInto(prompt, cache, logits);
            prefill[r] = s.PromptTokens / Stopwatch.GetElapsedTime(p0).TotalSeconds;
            long d0 = Stopwatch.GetTimestamp();
            for (int i = 0; i < s.GenTokens; i++) model.ForwardInto([Activations.ArgMax(logits)], cache, logits);
            decode[r] = s.GenTokens / Stopwatch.GetElapsedTime(d0).TotalSeconds;
        }

        log.WriteLine($"measuring read bandwidth: {model.Threads} thread(s) x {MemoryBandwidth.StreamsPerThread} streams over {s.BandwidthMib} MiB ...");
        var bw = MemoryBandwidth.Measure(model.Threads, (long)s.BandwidthMib << 20);

        var batches = s.Batches.Length > 0 ? MeasureBatches(model, s, log) : null;
        double decodeRate = Median(decode), decodeGbps = model.DecodeBytesPerToken * decodeRate / 1e9;
        return new BenchReport
        {
            Model = dir,
            ModelName = Path.GetFileName(Path.TrimEndingDirectorySeparator(dir)),
            Dtype = c.TorchDtype ?? MatrixTypes(model),
            Layers = c.NumHiddenLayers,
            HiddenSize = c.HiddenSize,
            IntermediateSize = c.IntermediateSize,
            AttentionHeads = c.NumAttentionHeads,
            KeyValueHeads = c.NumKeyValueHeads,
            VocabSize = c.VocabSize,
            WeightBytes = model.DecodeBytesPerToken,
            Isa = IsaSupport.Best.ToString(),
            Threads = model.Threads,
            ProcessorCount = Environment.ProcessorCount,
            LoadMs = loadMs,
            PromptTokens = s.PromptTokens,
            GenTokens = s.GenTokens,
            Repeat = s.Repeat,
            PrefillTokensPerS = Median(prefill),
            PrefillTokensPerSMin = prefill.Min(),
            PrefillTokensPerSMax = prefill.Max(),
            DecodeTokensPerS = decodeRate,
            DecodeTokensPerSMin = decode.Min(),
            DecodeTokensPerSMax = decode.Max(),
            DecodeGbPerS = decodeGbps,
            ReadBandwidthGbPerS = bw.GigabytesPerSecond,
            BandwidthFraction = decodeGbps / bw.GigabytesPerSecond,
            BandwidthBufferBytes = bw.BufferBytes,
            BandwidthStreamsPerThread = bw.StreamsPerThread,
            BandwidthPasses = bw.Passes,
            Batches = batches,
        };
    }

    /// <summary>
    /// Batched decode at each size: sequences of mixed prompt lengths in one paged cache, one token each per step. The
    /// sizes take turns within each repeat (and every run rewinds what it decoded), so a drift in the machine's speed
    /// touches all sizes alike; the speed-up over batch 1 is the median of the per-repeat ratios.
    /// </summary>
    private static List<BatchReport> MeasureBatches(Qwen2Model model, Settings s, TextWriter log)
    {
        var c = model.Config;
        int vocab = c.VocabSize, q = c.NumAttentionHeads * c.HeadDim, kv = c.NumKeyValueHeads * c.HeadDim;
        // Multiply-adds per token in the matrix products (attention's own, which grow with the context, are left out).
        long macs = (long)c.NumHiddenLayers * ((long)c.HiddenSize * (q + 2 * kv) + (long)q * c.HiddenSize + 3L * c.HiddenSize * c.IntermediateSize)
            + (long)vocab * c.HiddenSize;
        int capacity = Math.Min(model.Options.DefaultCacheCapacity, c.MaxPositionEmbeddings);
        var runs = new List<BatchRun>();
        foreach (int size in s.Batches)
        {
            int[] lengths = Enumerable.Range(0, size).Select(i => Math.Max(1, s.PromptTokens * (2 + i % 4) / 4 + i % 7)).ToArray();
            var run = new BatchRun(size, lengths, new BatchingKvCache(model, new BatchingKvCacheOptions { MaxBytes = 64L << 30 }), vocab, s.Repeat);
            var prompts = lengths.Select((len, i) => Enumerable.Range(0, len).Select(t => (int)((t * 2654435761L + 17 + 7919L * i) % vocab)).ToArray()).ToArray();
            log.WriteLine($"batch {size}: prefill of {lengths.Sum()} tokens in one batched forward ...");
            long p0 = Stopwatch.GetTimestamp();
            model.ForwardBatchInto(prompts.Select((p, i) => new BatchInput(p, run.Sequences[i])).ToArray(), run.Logits);
            run.PrefillSeconds = Stopwatch.GetElapsedTime(p0).TotalSeconds;
            int warm = Math.Min(2, s.GenTokens);
            for (int i = 0; i < warm; i++) run.Step(model); // first touch of blocks and scratch
            run.Rewind(warm);
            runs.Add(run);
        }
        log.WriteLine($"timing {s.GenTokens} decode steps per batch size, sizes taking turns, {s.Repeat} time(s) ...");
        for (int r = 0; r < s.Repeat; r++)
            foreach (var run in runs)
            {
                long d0 = Stopwatch.GetTimestamp();
                for (int i = 0; i < s.GenTokens; i++) run.Step(model);
                run.Rates[r] = run.Size * s.GenTokens / Stopwatch.GetElapsedTime(d0).TotalSeconds;
                if (r < s.Repeat - 1) run.Rewind(s.GenTokens); // the last run's tokens stay for the memory figures
            }

        var single = runs.FirstOrDefault(x => x.Size == 1);
        var reports = new List<BatchReport>();
        foreach (var run in runs)
        {
            double rate = Median(run.Rates);
            long tokenBytes = run.Cache.Pool.TokenBytes, held = run.Cache.TokensHeld;
            int longest = run.Sequences.Max(seq => seq.Count);
            reports.Add(new BatchReport
            {
                Batch = run.Size,
                PromptTokens = run.Lengths,
                PrefillTokensPerS = run.Lengths.Sum() / run.PrefillSeconds,
                DecodeTokensPerS = rate,
                DecodeTokensPerSMin = run.Rates.Min(),
                DecodeTokensPerSMax = run.Rates.Max(),
                PerSequenceTokensPerS = rate / run.Size,
                SpeedupOverBatch1 = single is null ? null : Median(run.Rates.Select((x, i) => x / single.Rates[i]).ToArray()),
                WeightGbPerS = model.DecodeBytesPerToken * rate / run.Size / 1e9,
                MatMulGflopPerS = 2.0 * macs * rate / 1e9,
                KvTokensHeld = held,
                KvExactBytes = held * tokenBytes,
                KvPagedBytes = run.Cache.Pool.BytesInUse,
                KvPaddedBytes = (long)run.Size * longest * tokenBytes,
                KvReservedRingBytes = (long)run.Size * capacity * tokenBytes,
                KvBlockSize = run.Cache.Pool.BlockSize,
            });
            foreach (var seq in run.Sequences) run.Cache.Leave(seq);
        }
        return reports;
    }

    /// <summary>One batch size's sequences, their next tokens and logits, and its timed runs.</summary>
    private sealed class BatchRun
    {
        private readonly int[][] _tokens;
        private readonly BatchInput[] _inputs;
        private readonly int _vocab;

        public BatchRun(int size, int[] lengths, BatchingKvCache cache, int vocab, int repeat)
        {
            Size = size; Lengths = lengths; Cache = cache; _vocab = vocab;
            Sequences = lengths.Select(_ => cache.Join()).ToArray();
            Logits = new float[(long)size * vocab];
            _tokens = new int[size][];
            _inputs = new BatchInput[size];
            for (int i = 0; i < size; i++) { _tokens[i] = new int[1]; _inputs[i] = new BatchInput(_tokens[i], Sequences[i]); }
            Rates = new double[repeat];
        }

        public int Size { get; }
        public int[] Lengths { get; }
        public BatchingKvCache Cache { get; }
        public PastKeyValues[] Sequences { get; }
        public float[] Logits { get; }
        public double[] Rates { get; }
        public double PrefillSeconds { get; set; }

        /// <summary>Greedy: each sequence's next token is the argmax of its row.</summary>
        public void Step(Qwen2Model model)
        {
            for (int i = 0; i < Size; i++) _tokens[i][0] = Activations.ArgMax(Logits.AsSpan(i * _vocab, _vocab));
            model.ForwardBatchInto(_inputs, Logits);
        }

        public void Rewind(int tokens)
        {
            foreach (var seq in Sequences) seq.Rewind(tokens);
        }
    }

    /// <summary>
    /// The element types of the weight matrices, most bytes first (e.g. <c>Q4_K+Q6_K</c> for a q4_k_m GGUF file, which
    /// has no torch_dtype): what the bytes per token are made of.
    /// </summary>
    private static string MatrixTypes(Qwen2Model model)
    {
        var types = model.Tensors.Where(t => t.Tensor.Shape.Length == 2)
            .GroupBy(t => t.Tensor.DType)
            .OrderByDescending(g => g.Sum(t => t.Tensor.End - t.Tensor.Begin))
            .Select(g => g.Key).ToArray();
        return types.Length > 0 ? string.Join('+', types) : "unknown";
    }

    private static double Median(double[] values)
    {
        var v = values.Order().ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    private static void WriteTable(BenchReport r, TextWriter w)
    {
        var ci = CultureInfo.InvariantCulture;
        w.WriteLine(string.Create(ci,
            $"Qwen2 checkpoint {r.ModelName}: {r.Layers} layers, hidden {r.HiddenSize}, intermediate {r.IntermediateSize}, heads {r.AttentionHeads}/{r.KeyValueHeads}, vocab {r.VocabSize}, {r.WeightBytes / 1e9:F3} GB of {r.Dtype} weights read per token"));
        w.WriteLine(string.Create(ci, $"{r.Threads} threads, {r.Isa} kernels, {r.ProcessorCount} logical processors; loaded in {r.LoadMs:F0} ms"));
        w.WriteLine();
        w.WriteLine(r.Repeat > 1 ? string.Create(ci, $"| measure | median of {r.Repeat} | min | max |") : "| measure | value | | |");
        w.WriteLine("| --- | ---: | ---: | ---: |");
        string Range(double min, double max) => r.Repeat > 1 ? string.Create(ci, $"{min:F1} | {max:F1}") : " | ";
        w.WriteLine(string.Create(ci, $"| prefill, {r.PromptTokens} tokens (tokens/s) | {r.PrefillTokensPerS:F1} | {Range(r.PrefillTokensPerSMin, r.PrefillTokensPerSMax)} |"));
        w.WriteLine(string.Create(ci, $"| decode, {r.GenTokens} greedy steps (tokens/s) | {r.DecodeTokensPerS:F2} | {Range(r.DecodeTokensPerSMin, r.DecodeTokensPerSMax)} |"));
        w.WriteLine(string.Create(ci, $"| decode weight reads (GB/s) | {r.DecodeGbPerS:F2} | | |"));
        w.WriteLine(string.Create(ci,
            $"| read bandwidth, {r.Threads} threads x {r.BandwidthStreamsPerThread} streams, {r.BandwidthBufferBytes >> 20} MiB, best of {r.BandwidthPasses} (GB/s) | {r.ReadBandwidthGbPerS:F2} | | |"));
        w.WriteLine(string.Create(ci, $"| decode / read bandwidth | {r.BandwidthFraction * 100:F0}% | | |"));
        if (r.Batches is not { Count: > 0 } batches) return;
        w.WriteLine();
        w.WriteLine(string.Create(ci, $"Batched decode ({r.GenTokens} steps, prompts of mixed lengths, paged KV cache in blocks of {batches[0].KvBlockSize}):"));
        w.WriteLine();
        w.WriteLine("| batch | decode tokens/s (all sequences) | per sequence | vs batch 1 | weight reads GB/s | matmul GFLOP/s | KV tokens held | KV paged | KV padded | paged / held |");
        w.WriteLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var b in batches)
            w.WriteLine(string.Create(ci,
                $"| {b.Batch} | {b.DecodeTokensPerS:F1} | {b.PerSequenceTokensPerS:F1} | {(b.SpeedupOverBatch1 is { } x ? x.ToString("F2", ci) + "x" : "-")} | {b.WeightGbPerS:F1} | {b.MatMulGflopPerS:F0} | {b.KvTokensHeld} | {b.KvPagedBytes / 1048576.0:F1} MiB | {b.KvPaddedBytes / 1048576.0:F1} MiB | {(double)b.KvPagedBytes / b.KvExactBytes:F3} |"));
    }
}
