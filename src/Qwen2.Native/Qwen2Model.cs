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
        // Counted in before the disposed check (both full fences): Dispose either sees this call and waits for it,
        // or this call sees Dispose and backs out, never reading weights that are being unmapped.
        Interlocked.Increment(ref _inFlight);
        try
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            Run(inputIds, cache, logits, selection);
        }
        finally
        {
            if (Interlocked.Decrement(ref _inFlight) == 0 && Volatile.Read(ref _disposed) != 0)
                lock (_drained) Monitor.PulseAll(_drained);
        }
    }

    private void Run(ReadOnlySpan<int> inputIds, PastKeyValues? cache, Span<float> logits, LogitsSelection selection)
    {
        var c = Config;
        ValidateIds(inputIds);
        int n = inputIds.Length, rows = selection == LogitsSelection.All ? n : 1;
        if (logits.Length < (long)rows * c.VocabSize)
            throw new ArgumentException($"logits holds {logits.Length} floats; {rows} rows of {c.VocabSize} are needed", nameof(logits));
        if (cache is not null) CheckCache(cache, n); // before anything changes: a failed call leaves the cache as it was

        int H = c.HiddenSize, Q = c.NumAttentionHeads * c.HeadDim, KV = c.NumKeyValueHeads * c.HeadDim, I = c.IntermediateSize, half = c.HeadDim / 2;
        int past = 0;
        for (int i = 0; cache is not null && i < cache.Layers; i++) past = Math.Max(past, cache[i].Held.Count);
        // Size the attention scratch for a full cache, not the current length, so every decode step rents the same
        // pooled buffer and a step allocates nothing as the sequence grows.
        int keys = cache is not null && cache.Capacity is > 0 and <= 1 << 20 ? Math.Max(past, cache.Capacity) + n : past + n;
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
            int start = cache?.Position ?? 0;
            for (int t = 0; t < n; t++)
            {
                pos[t] = start + t;
                _embed.ReadRow(inputIds[t], x.Slice(t * H, H));
                Rope.Angles(pos[t], _invFreq, cos.Slice(t * half, half), sin.Slice(t * half, half));
            }
            float eps = (float)c.RmsNormEps;
            for (int li = 0; li < _layers.Length; li++)
            {
                var w = _layers[li];
                // attention block: h = x + o_proj(attn(rope(q), rope(k), v))
                RmsNorm.Apply(x, w.InputNorm, eps, xn, n);
                if (n == 1)
                {
                    // One token: the three projections as one job for the pool (same bits as three calls).
                    MatMul.MultiplyFused(w.Q, q, w.K, k, w.V, v, xn, _pool);
                    AddBias(q, w.QBias, Q, 1); AddBias(k, w.KBias, KV, 1); AddBias(v, w.VBias, KV, 1);
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
                var layerCache = cache?[li];
                var mask = (layerCache?.Visibility ?? AttentionMask.Causal) with { Window = w.SlidingWindow ? c.SlidingWindow : int.MaxValue };
                Attention.Compute(q, pos, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim, layerCache is null ? default : layerCache.Held,
                    new KvBlock(k, v, pos), mask, att, scratch, _pool);
                layerCache?.Append(k, v, n);
                Project(w.O, att, xn, n, null);
                TensorPrimitives.Add(x, xn, x);
                // MLP block: out = h + down(silu(gate(h')) * up(h'))
                RmsNorm.Apply(x, w.PostAttentionNorm, eps, xn, n);
                if (n == 1) MatMul.MultiplyFused(w.Gate, gate, w.Up, up, default, default, xn, _pool);
                else
                {
                    Project(w.Gate, xn, gate, n, null);
                    Project(w.Up, xn, up, n, null);
                }
                Activations.SiluMul(gate, up, gate);
                Project(w.Down, gate, xn, n, null);
                TensorPrimitives.Add(x, xn, x);
            }
            // final norm and lm_head, only on the rows asked for
            var last = x.Slice((n - rows) * H, rows * H);
            RmsNorm.Apply(last, _norm, eps, xn, rows);
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
