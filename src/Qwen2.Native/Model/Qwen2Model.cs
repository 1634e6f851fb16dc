using System.Buffers;
using System.Numerics.Tensors;
using Qwen2.Kernels;
using Qwen2.Native.Generation;

namespace Qwen2.Native;

/// <summary>
/// A Qwen2 / Qwen2.5 causal language model loaded from a Hugging Face checkpoint directory. Weights stay in the
/// memory-mapped safetensors files (BF16 and F16 are widened in registers, never copied to float32). The model is
/// immutable after load and may be shared by many callers; each sequence keeps its own <see cref="PastKeyValues"/>.
/// </summary>
public sealed class Qwen2Model : IDisposable
{
    private readonly CheckpointFiles _files;
    private readonly WorkerPool _pool;
    // The model's own pools: the shared ones give arrays back to the GC under memory pressure, and a decode step must
    // not allocate whatever the rest of the process does. Four arrays per size serve four concurrent callers.
    private readonly ArrayPool<float> _floatPool = ArrayPool<float>.Create(1 << 30, 4);
    private readonly ArrayPool<int> _intPool = ArrayPool<int>.Create(1 << 30, 4);
    private readonly ArrayPool<Segment> _segmentPool = ArrayPool<Segment>.Create(1 << 20, 4);
    private readonly WeightMatrix _embed, _lmHead;
    private readonly LayerWeights[] _layers;
    private readonly float[] _norm, _invFreq;
    private readonly object _drained = new();
    private int _disposed;  // 1 once Dispose has begun: new forward calls are refused
    private int _inFlight;  // forward calls between their entry check and their end

    private Qwen2Model(string directory, Qwen2Config config, GenerationConfig generation, CheckpointFiles files, ModelOptions options)
    {
        Directory = directory; Config = config; GenerationConfig = generation; Options = options; _files = files;
        EosTokenIds = generation.EosTokenIds.Concat(config.EosTokenIds).Distinct().ToArray();
        (_embed, _layers, _norm, _lmHead) = ModelWeights.Load(files, config);
        _invFreq = Rope.InverseFrequencies(config.HeadDim, config.RopeTheta);
        // An untied embedding is looked up one row per token; a tied one is read whole as the lm_head.
        DecodeBytesPerToken = WeightBytes - (config.TieWordEmbeddings ? 0 : _embed.ByteLength - _embed.RowBytes);
        _pool = new WorkerPool(options.Threads);
    }

    /// <summary>Loads <c>config.json</c> and the safetensors weights (single file or sharded) of <paramref name="directory"/>.</summary>
    /// <exception cref="CheckpointException">A file is missing or malformed; the message names the file and tensor or field.</exception>
    public static Qwen2Model Load(string directory, ModelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(directory);
        options ??= new ModelOptions();
        if (options.Threads is < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Threads, "Threads must be at least 1");
        if (options.DefaultCacheCapacity < 1) throw new ArgumentOutOfRangeException(nameof(options), options.DefaultCacheCapacity, "DefaultCacheCapacity must be at least 1");
        if (!System.IO.Directory.Exists(directory)) throw new CheckpointException(directory, "checkpoint directory not found");
        var config = Qwen2Config.Load(Path.Combine(directory, "config.json"));
        var generation = GenerationConfig.Load(directory);
        var files = new CheckpointFiles(directory);
        try
        {
            return new Qwen2Model(directory, config, generation, files, options);
        }
        catch
        {
            files.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Loads a model as Hugging Face's <c>from_pretrained</c> does: <paramref name="idOrDirectory"/> is a checkpoint
    /// directory or a hub id (<c>Qwen/Qwen2.5-0.5B-Instruct</c>) found in the Hugging Face cache; null reads the
    /// <c>QWEN2_MODEL</c> environment variable (see <see cref="ModelLocator"/>).
    /// </summary>
    /// <exception cref="ModelNotFoundException">The id names no downloaded checkpoint; the message lists where it looked.</exception>
    /// <exception cref="CheckpointException">A file is missing or malformed; the message names the file and tensor or field.</exception>
    public static Qwen2Model FromPretrained(string? idOrDirectory, ModelOptions? options = null) => Load(ModelLocator.Resolve(idOrDirectory), options);

    /// <summary>The checkpoint directory.</summary>
    public string Directory { get; }

    /// <summary>The architecture.</summary>
    public Qwen2Config Config { get; }

    /// <summary>The checkpoint's generation_config.json (defaults when the file is absent).</summary>
    public GenerationConfig GenerationConfig { get; }

    /// <summary>End-of-sequence ids: generation_config.json's, then config.json's, without repeats.</summary>
    public IReadOnlyList<int> EosTokenIds { get; }

    /// <summary>
    /// Weight bytes one decode step reads: every mapped tensor, except that an untied embedding contributes only the
    /// row it looks up. Decode speed is bound by this over the memory bandwidth.
    /// </summary>
    public long DecodeBytesPerToken { get; }

    /// <summary>How the model runs.</summary>
    public ModelOptions Options { get; }

    /// <summary>Threads used by a forward call.</summary>
    public int Threads => _pool.Threads;

    /// <summary>Every tensor in the checkpoint with the file that holds it.</summary>
    public IEnumerable<(TensorInfo Tensor, string File)> Tensors =>
        _files.TensorFiles.Select(kv => (kv.Value.Tensors[kv.Key], Path.GetFileName(kv.Value.Path)));

    /// <summary>Bytes of the mapped weight files' data sections.</summary>
    public long WeightBytes => _files.Files.Sum(f => f.DataLength);

    /// <summary>Creates one ring-buffer cache per layer, preallocated for <paramref name="capacity"/> tokens.</summary>
    /// <param name="capacity">Tokens each layer holds; null means <see cref="ModelOptions.DefaultCacheCapacity"/> capped by max_position_embeddings.</param>
    /// <param name="options">Overflow behaviour and sink tokens.</param>
    public PastKeyValues CreateCache(int? capacity = null, CacheOptions? options = null) =>
        PastKeyValues.CreateRing(Config.NumHiddenLayers, capacity ?? Math.Min(Options.DefaultCacheCapacity, Config.MaxPositionEmbeddings),
            Config.NumKeyValueHeads, Config.HeadDim, options);

    /// <summary>Runs the whole sequence with no cache and returns logits for every position.</summary>
    public Logits Forward(ReadOnlySpan<int> inputIds) => Forward(inputIds, null, false, LogitsSelection.All).Logits;

    /// <summary>
    /// The Hugging Face-style forward: <paramref name="inputIds"/> continue the sequence held by
    /// <paramref name="pastKeyValues"/>; with <paramref name="useCache"/> and no caches given, caches are created.
    /// RoPE positions start at the cache's <see cref="PastKeyValues.Position"/>.
    /// </summary>
    /// <param name="inputIds">New token ids, each in [0, vocab_size).</param>
    /// <param name="pastKeyValues">Caches from an earlier call, or null.</param>
    /// <param name="useCache">Keep keys and values: return the (created or updated) caches.</param>
    /// <param name="logits">Logits for every new position or only the last.</param>
    /// <exception cref="CacheFullException">The caches cannot take the new tokens; they are unchanged.</exception>
    public ForwardOutput Forward(ReadOnlySpan<int> inputIds, PastKeyValues? pastKeyValues = null, bool useCache = false, LogitsSelection logits = LogitsSelection.All)
    {
        if (pastKeyValues is not null && !useCache)
            throw new ArgumentException("pastKeyValues were given with useCache: false; pass useCache: true to continue a cached sequence, or no caches to run without one", nameof(useCache));
        ValidateIds(inputIds); // before a cache is allocated for a call that would fail anyway
        var cache = pastKeyValues ?? (useCache ? CreateCache(Math.Max(inputIds.Length, Math.Min(Options.DefaultCacheCapacity, Config.MaxPositionEmbeddings))) : null);
        int rows = logits == LogitsSelection.All ? inputIds.Length : 1;
        var values = new float[(long)rows * Config.VocabSize];
        ForwardInto(inputIds, cache, values, logits);
        return new ForwardOutput(new Logits(values, rows, Config.VocabSize), cache);
    }

    /// <summary>
    /// The allocation-free forward: writes the selected logits rows into <paramref name="logits"/> and, when
    /// <paramref name="cache"/> is given, appends the new tokens to it. Scratch memory comes from a pool.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The model is disposed or being disposed.</exception>
    public void ForwardInto(ReadOnlySpan<int> inputIds, PastKeyValues? cache, Span<float> logits, LogitsSelection selection = LogitsSelection.Last)
    {
        var segment = new Segment { Start = 0, Length = inputIds.Length, Cache = cache, Rows = selection == LogitsSelection.All ? inputIds.Length : 1 };
        Guarded(inputIds, new ReadOnlySpan<Segment>(in segment), logits);
    }

    /// <summary>
    /// One forward over several sequences at once: every input's tokens go through each weight matrix together (a
    /// matrix-matrix product), so a decode step of N sequences reads the weights once instead of N times. Each input
    /// continues its own cache (any <see cref="PastKeyValues"/>: ring, or a <see cref="BatchingKvCache"/> sequence) at
    /// its own position, and attends only to its own keys. Every input is checked, and room in every cache is taken,
    /// before anything changes: a failed call leaves all caches as they were.
    /// </summary>
    /// <param name="inputs">The sequences and their new tokens; a cache may appear once.</param>
    /// <returns>Each input's logits, in order.</returns>
    /// <exception cref="CacheFullException">A cache or the block pool cannot take the new tokens; nothing was changed.</exception>
    public Logits[] ForwardBatch(ReadOnlySpan<BatchInput> inputs)
    {
        int rows = CountLogitsRows(inputs);
        var values = new float[(long)rows * Config.VocabSize];
        ForwardBatchInto(inputs, values);
        var result = new Logits[inputs.Length];
        int at = 0;
        for (int i = 0; i < inputs.Length; i++)
        {
            int r = inputs[i].Logits == LogitsSelection.All ? inputs[i].InputIds.Length : 1;
            result[i] = new Logits(values.AsSpan(at * Config.VocabSize, r * Config.VocabSize).ToArray(), r, Config.VocabSize);
            at += r;
        }
        return result;
    }

    /// <summary>
    /// The allocation-free <see cref="ForwardBatch"/>: writes each input's selected logits rows, input after input, into
    /// <paramref name="logits"/> (with <see cref="LogitsSelection.Last"/> everywhere, row i belongs to input i).
    /// </summary>
    public void ForwardBatchInto(ReadOnlySpan<BatchInput> inputs, Span<float> logits)
    {
        CountLogitsRows(inputs); // an empty batch or input is named here; Validate checks the logits' room
        long total = 0;
        foreach (var input in inputs) total += input.InputIds.Length;
        if (total > Array.MaxLength) throw new ArgumentException("the batch holds more tokens than one array", nameof(inputs));
        int[] ids = _intPool.Rent((int)total);
        var segments = _segmentPool.Rent(inputs.Length);
        try
        {
            int at = 0;
            for (int i = 0; i < inputs.Length; i++)
            {
                var input = inputs[i];
                input.InputIds.Span.CopyTo(ids.AsSpan(at));
                segments[i] = new Segment { Start = at, Length = input.InputIds.Length, Cache = input.Cache, Rows = input.Logits == LogitsSelection.All ? input.InputIds.Length : 1 };
                at += input.InputIds.Length;
            }
            Guarded(ids.AsSpan(0, at), segments.AsSpan(0, inputs.Length), logits);
        }
        finally
        {
            _intPool.Return(ids);
            _segmentPool.Return(segments, clearArray: true);
        }
    }

    private static int CountLogitsRows(ReadOnlySpan<BatchInput> inputs)
    {
        if (inputs.IsEmpty) throw new ArgumentException("the batch is empty; give at least one input", nameof(inputs));
        long rows = 0;
        for (int i = 0; i < inputs.Length; i++)
        {
            if (inputs[i].InputIds.IsEmpty) throw new ArgumentException($"input {i} has no tokens; each needs at least one", nameof(inputs));
            rows += inputs[i].Logits == LogitsSelection.All ? inputs[i].InputIds.Length : 1;
        }
        if (rows > int.MaxValue) throw new ArgumentException("the batch asks for too many logits rows", nameof(inputs));
        return (int)rows;
    }

    /// <summary>A sequence's slice of a batch: its tokens' range, its cache, and how many of its last rows get logits.</summary>
    private struct Segment
    {
        public int Start, Length, Rows;
        public PastKeyValues? Cache;
    }

    private void Guarded(ReadOnlySpan<int> inputIds, ReadOnlySpan<Segment> segments, Span<float> logits)
    {
        // Counted in before the disposed check (both full fences): Dispose either sees this call and waits for it,
        // or this call sees Dispose and backs out, never reading weights that are being unmapped.
        Interlocked.Increment(ref _inFlight);
        try
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            Validate(inputIds, segments, logits);
            try
            {
                Run(inputIds, segments, logits);
            }
            finally
            {
                foreach (var seg in segments) seg.Cache?.Paged?.ReleaseReservation();
            }
        }
        finally
        {
            if (Interlocked.Decrement(ref _inFlight) == 0 && Volatile.Read(ref _disposed) != 0)
                lock (_drained) Monitor.PulseAll(_drained);
        }
    }

    /// <summary>Checks ids, logits room and every cache, then promises each paged cache its blocks: all before anything changes.</summary>
    private void Validate(ReadOnlySpan<int> inputIds, ReadOnlySpan<Segment> segments, Span<float> logits)
    {
        ValidateIds(inputIds);
        long rows = 0;
        foreach (var seg in segments) rows += seg.Rows;
        if (logits.Length < rows * Config.VocabSize)
            throw new ArgumentException($"logits holds {logits.Length} floats; {rows} rows of {Config.VocabSize} are needed", nameof(logits));
        for (int i = 0; i < segments.Length; i++)
        {
            var cache = segments[i].Cache;
            if (cache is null) continue;
            for (int j = 0; j < i; j++)
                if (segments[j].Cache is { } other && (other == cache || other[0] == cache[0]))
                    throw new ArgumentException($"inputs {j} and {i} share one cache; each sequence may appear once in a batch", "inputs");
            CheckCache(cache, segments[i].Length);
        }
        // Sequences of one pool are promised their blocks together, so a batch that fits each sequence alone but not
        // all of them at once fails here, with every cache untouched.
        for (int i = 0; i < segments.Length; i++)
        {
            if (segments[i].Cache?.Paged is not { } first || FirstOfPool(segments, i) != i) continue;
            try
            {
                first.Pool.Reserve(BlocksFor(segments, first.Pool));
            }
            catch
            {
                for (int j = 0; j < i; j++)
                    if (segments[j].Cache?.Paged is { } earlier && FirstOfPool(segments, j) == j)
                        earlier.Pool.Unreserve(BlocksFor(segments, earlier.Pool));
                throw;
            }
        }
        foreach (var seg in segments)
            if (seg.Cache?.Paged is { } p) p.Promise(p.BlocksNeeded(p.Cache.Count, seg.Length));

        static int FirstOfPool(ReadOnlySpan<Segment> segments, int i)
        {
            for (int j = 0; j < i; j++)
                if (segments[j].Cache?.Paged?.Pool == segments[i].Cache!.Paged!.Pool) return j;
            return i;
        }

        // Blocks the segments of one pool take from it.
        static int BlocksFor(ReadOnlySpan<Segment> segments, KvBlockPool pool)
        {
            int total = 0;
            foreach (var seg in segments)
                if (seg.Cache?.Paged is { } p && p.Pool == pool) total += p.BlocksNeeded(p.Cache.Count, seg.Length);
            return total;
        }
    }

    private void Run(ReadOnlySpan<int> inputIds, ReadOnlySpan<Segment> segments, Span<float> logits)
    {
        var c = Config;
        int n = inputIds.Length, rows = 0;
        int H = c.HiddenSize, Q = c.NumAttentionHeads * c.HeadDim, KV = c.NumKeyValueHeads * c.HeadDim, I = c.IntermediateSize, half = c.HeadDim / 2;
        // Size the attention scratch for full caches, not their current lengths, so every decode step rents the same
        // pooled buffer and a step allocates nothing as the sequences grow.
        int keys = 0;
        foreach (var seg in segments)
        {
            rows += seg.Rows;
            var cache = seg.Cache;
            int past = 0;
            for (int i = 0; cache is not null && i < cache.Layers; i++) past = Math.Max(past, cache[i].Count);
            keys = Math.Max(keys, (cache is not null && cache.Capacity is > 0 and <= 1 << 20 ? Math.Max(past, cache.Capacity) : past) + seg.Length);
        }
        int attScratch = Attention.ScratchLength(keys, _pool.Threads);
        long total = (long)n * (2 * H + 2 * Q + 2 * KV + 2 * I + 2 * half) + attScratch;
        if (total > Array.MaxLength) throw new ArgumentException($"{n} tokens need more scratch memory than one array holds; split the input", nameof(inputIds));
        float[] buffer = _floatPool.Rent((int)total);
        int[] positions = _intPool.Rent(n);
        try
        {
            int used = 0;
            Span<float> Take(int len) { used += len; return buffer.AsSpan(used - len, len); }
            Span<float> x = Take(n * H), xn = Take(n * H), q = Take(n * Q), k = Take(n * KV), v = Take(n * KV),
                att = Take(n * Q), gate = Take(n * I), up = Take(n * I), cos = Take(n * half), sin = Take(n * half), scratch = Take(attScratch);
            var pos = positions.AsSpan(0, n);
            foreach (var seg in segments)
            {
                int start = seg.Cache?.Position ?? 0;
                for (int t = 0; t < seg.Length; t++) pos[seg.Start + t] = start + t;
            }
            for (int t = 0; t < n; t++)
            {
                _embed.ReadRow(inputIds[t], x.Slice(t * H, H));
                Rope.Angles(pos[t], _invFreq, cos.Slice(t * half, half), sin.Slice(t * half, half));
            }
            float eps = (float)c.RmsNormEps;
            for (int li = 0; li < _layers.Length; li++)
            {
                var w = _layers[li];
                // attention block: h = x + o_proj(attn(rope(q), rope(k), v))
                RmsNorm.Apply(x, w.InputNorm, eps, xn, n);
                if (MatMul.Streams(w.Q.Type, n))
                {
                    // The three projections as one job for the pool (same bits as three calls), wherever the weights
                    // stream: every decode step, and a prefill but for F16 weights.
                    MatMul.MultiplyFused(w.Q, q, w.K, k, w.V, v, xn, n, _pool);
                    AddBias(q, w.QBias, Q, n); AddBias(k, w.KBias, KV, n); AddBias(v, w.VBias, KV, n);
                }
                else
                {
                    Project(w.Q, xn, q, n, w.QBias);
                    Project(w.K, xn, k, n, w.KBias);
                    Project(w.V, xn, v, n, w.VBias);
                }
                for (int t = 0; t < n; t++)
                {
                    Rope.Apply(q.Slice(t * Q, Q), c.NumAttentionHeads, c.HeadDim, cos.Slice(t * half, half), sin.Slice(t * half, half));
                    Rope.Apply(k.Slice(t * KV, KV), c.NumKeyValueHeads, c.HeadDim, cos.Slice(t * half, half), sin.Slice(t * half, half));
                }
                // Each sequence attends to its own cache and its own new keys only.
                foreach (var seg in segments)
                {
                    var layerCache = seg.Cache?[li];
                    var mask = (layerCache?.Visibility ?? AttentionMask.Causal) with { Window = w.SlidingWindow ? c.SlidingWindow : int.MaxValue };
                    var segK = k.Slice(seg.Start * KV, seg.Length * KV);
                    var segV = v.Slice(seg.Start * KV, seg.Length * KV);
                    var segPos = pos.Slice(seg.Start, seg.Length);
                    Attention.Compute(q.Slice(seg.Start * Q, seg.Length * Q), segPos, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim,
                        layerCache is null ? default : layerCache.Held, new KvBlock(segK, segV, segPos), mask,
                        att.Slice(seg.Start * Q, seg.Length * Q), scratch, _pool);
                    layerCache?.Append(segK, segV, seg.Length);
                }
                Project(w.O, att, xn, n, null);
                TensorPrimitives.Add(x, xn, x);
                // MLP block: out = h + down(silu(gate(h')) * up(h'))
                RmsNorm.Apply(x, w.PostAttentionNorm, eps, xn, n);
                if (MatMul.Streams(w.Gate.Type, n)) MatMul.MultiplyFused(w.Gate, gate, w.Up, up, default, default, xn, n, _pool);
                else
                {
                    Project(w.Gate, xn, gate, n, null);
                    Project(w.Up, xn, up, n, null);
                }
                Activations.SiluMul(gate, up, gate);
                Project(w.Down, gate, xn, n, null);
                TensorPrimitives.Add(x, xn, x);
            }
            // final norm and lm_head, only on the rows asked for: each sequence's last rows, gathered in order
            int r = 0;
            foreach (var seg in segments)
            {
                RmsNorm.Apply(x.Slice((seg.Start + seg.Length - seg.Rows) * H, seg.Rows * H), _norm, eps, xn.Slice(r * H, seg.Rows * H), seg.Rows);
                r += seg.Rows;
            }
            MatMul.Multiply(_lmHead, xn[..(rows * H)], logits, rows, _pool);
        }
        finally
        {
            _floatPool.Return(buffer);
            _intPool.Return(positions);
        }
    }

    private void Project(in WeightMatrix w, ReadOnlySpan<float> x, Span<float> y, int n, float[]? bias)
    {
        MatMul.Multiply(w, x, y, n, _pool);
        AddBias(y, bias, w.Rows, n);
    }

    private static void AddBias(Span<float> y, float[]? bias, int rows, int n)
    {
        if (bias is null) return;
        for (int t = 0; t < n; t++)
        {
            var row = y.Slice(t * rows, rows);
            TensorPrimitives.Add(row, bias, row);
        }
    }

    private void ValidateIds(ReadOnlySpan<int> ids)
    {
        if (ids.IsEmpty) throw new ArgumentException("inputIds is empty; a forward call needs at least one token", "inputIds");
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)Config.VocabSize)
                throw new ArgumentOutOfRangeException("inputIds", ids[i], $"token id at index {i} is {ids[i]}; this model's ids run from 0 to {Config.VocabSize - 1}");
    }

    private void CheckCache(PastKeyValues cache, int tokens)
    {
        var c = Config;
        if (cache.Layers != c.NumHiddenLayers)
            throw new ArgumentException($"the cache has {cache.Layers} layers, this model {c.NumHiddenLayers}; it belongs to another model", "pastKeyValues");
        for (int i = 0; i < cache.Layers; i++)
        {
            var l = cache[i];
            if (l.KvHeads != c.NumKeyValueHeads || l.HeadDim != c.HeadDim)
                throw new ArgumentException($"layer {i}'s cache holds {l.KvHeads} kv heads x {l.HeadDim}, this model {c.NumKeyValueHeads} x {c.HeadDim}; it belongs to another model", "pastKeyValues");
            if (l.Position != cache.Position)
                throw new ArgumentException($"layer {i}'s cache is at position {l.Position}, layer 0's at {cache.Position}", "pastKeyValues");
        }
        for (int i = 0; i < cache.Layers; i++) cache[i].EnsureRoomFor(tokens);
    }

    /// <summary>
    /// Unmaps the weights and stops the worker threads. Safe while other threads run forward calls: from the moment
    /// Dispose begins, new calls throw <see cref="ObjectDisposedException"/>, and Dispose blocks until the calls already
    /// running have finished (a long prefill included) before it unmaps anything. Later calls to Dispose return at once.
    /// Do not call it from inside a forward call's cache (<see cref="IKvCache"/>) callbacks: it would wait for itself.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        lock (_drained)
        {
            while (Volatile.Read(ref _inFlight) != 0) Monitor.Wait(_drained);
        }
        _pool.Dispose();
        _files.Dispose();
    }
}
