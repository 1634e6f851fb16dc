using System.Buffers;
using Qwen2.Kernels;

namespace Qwen2.Native;

/// <summary>
/// A Qwen2 / Qwen2.5 causal language model loaded from a Hugging Face checkpoint directory or a GGUF file. Weights
/// stay in the memory-mapped files (BF16, F16 and the quantized formats are widened in registers, never copied to float32). The model is
/// immutable after load and may be shared by many callers; each sequence keeps its own <see cref="PastKeyValues"/>.
/// </summary>
public sealed class Qwen2Model : IDisposable
{
    private readonly ITensorSource _source;
    private readonly Qwen2Weights _weights;
    private readonly QuantizedWeights? _quantized; // ModelOptions.Quantize's matrices, owned by the model
    private readonly WorkerPool _pool;
    private readonly CallGuard _guard = new();
    // The model's own pools: the shared ones give arrays back to the GC under memory pressure, and a decode step must
    // not allocate whatever the rest of the process does. Four arrays per size serve four concurrent callers.
    private readonly ArrayPool<float> _floatPool = ArrayPool<float>.Create(1 << 30, 4);
    private readonly ArrayPool<int> _intPool = ArrayPool<int>.Create(1 << 30, 4);
    private readonly ArrayPool<BatchSlice> _slicePool = ArrayPool<BatchSlice>.Create(1 << 20, 4);
    private readonly ArrayPool<CacheWrite> _writePool = ArrayPool<CacheWrite>.Create(1 << 20, 4);

    private Qwen2Model(string directory, Qwen2Config config, ITensorSource source, TensorNames names, ModelOptions options, bool isGguf,
        SentenceTransformersFiles sentenceTransformers)
    {
        Directory = directory; Config = config; Options = options; _source = source; IsGguf = isGguf;
        SentenceTransformers = sentenceTransformers;
        _weights = WeightLoader.Load(source, names, config);
        if (options.Quantize is { } type)
        {
            _quantized = QuantizedWeights.Create(_weights, config, type, options.QuantizeBoost, options.Threads ?? Environment.ProcessorCount, directory);
            _weights = _quantized.Weights;
        }
        // An untied embedding is looked up one row per token; a tied one is read whole as the lm_head. An embedding
        // model reads no head, though a GGUF file may hold one.
        long unreadHead = config.LastTokenPooling && source.TryGet(names.LmHead, out var head) ? WeightTypes.ByteCount(head.Type, head.Shape.Aggregate(1L, (a, d) => a * d)) : 0;
        DecodeBytesPerToken = _quantized?.DecodeBytesPerToken
            ?? WeightBytes - unreadHead - (_weights.LmHead is not null && config.TieWordEmbeddings ? 0 : _weights.Embed.ByteLength - _weights.Embed.RowBytes);
        _pool = new WorkerPool(options.Threads);
    }

    /// <summary>
    /// Loads a model from <paramref name="path"/>: a Hugging Face checkpoint directory (<c>config.json</c> and the
    /// safetensors weights, single file or sharded), a <c>.gguf</c> file (the first part of a split one), or a directory
    /// without config.json that holds one GGUF model. GGUF tensors of every supported type (F32, F16, BF16, Q8_0, Q4_0,
    /// Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K) stay in the mapped file, as safetensors ones do.
    /// </summary>
    /// <exception cref="CheckpointException">A file is missing or malformed; the message names the file and tensor or field.</exception>
    public static Qwen2Model Load(string path, ModelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        options ??= new ModelOptions();
        if (options.Threads is < 1) throw new ArgumentOutOfRangeException(nameof(options), options.Threads, "Threads must be at least 1");
        if (options.Quantize is { } q && !WeightTypes.IsQuantized(q)) throw new ArgumentOutOfRangeException(nameof(options), q, "Quantize must be a block-quantized type (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K or Q6_K)");
        if (options.DefaultCacheCapacity < 1) throw new ArgumentOutOfRangeException(nameof(options), options.DefaultCacheCapacity, "DefaultCacheCapacity must be at least 1");
        if (GgufLocator.GgufModelOf(path) is { } gguf) return LoadGguf(gguf, options);
        var sentenceTransformers = SentenceTransformersFiles.Read(path);
        var config = Qwen2Config.Load(Path.Combine(path, "config.json")) with { LastTokenPooling = sentenceTransformers.LastTokenPooling };
        var source = new SafeTensorsSource(new CheckpointFiles(path));
        return Create(path, config, source, TensorNames.HuggingFaceIn(source), options, isGguf: false, sentenceTransformers);
    }

    private static Qwen2Model LoadGguf(string path, ModelOptions options)
    {
        var (files, arch, config) = GgufConfigReader.Open(path);
        var sentenceTransformers = SentenceTransformersFiles.None with { LastTokenPooling = config.LastTokenPooling };
        return Create(path, config, new GgufTensorSource(files), arch.Names, options, isGguf: true, sentenceTransformers);
    }

    private static Qwen2Model Create(string path, Qwen2Config config, ITensorSource source, TensorNames names, ModelOptions options, bool isGguf,
        SentenceTransformersFiles sentenceTransformers)
    {
        try
        {
            return new Qwen2Model(path, config, source, names, options, isGguf, sentenceTransformers);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Loads a model as Hugging Face's <c>from_pretrained</c> does: <paramref name="idOrDirectory"/> is a checkpoint
    /// directory, a <c>.gguf</c> file, or a hub id found in the Hugging Face cache (<c>Qwen/Qwen2.5-0.5B-Instruct</c>, or
    /// a GGUF repo with a quantization tag, <c>Qwen/Qwen2.5-0.5B-Instruct-GGUF:q4_k_m</c>); null reads the
    /// <c>QWEN2_MODEL</c> environment variable (see <see cref="ModelLocator"/>).
    /// </summary>
    /// <exception cref="ModelNotFoundException">The id names no downloaded checkpoint; the message lists where it looked.</exception>
    /// <exception cref="CheckpointException">A file is missing or malformed; the message names the file and tensor or field.</exception>
    public static Qwen2Model FromPretrained(string? idOrDirectory, ModelOptions? options = null) => Load(ModelLocator.Resolve(idOrDirectory), options);

    /// <summary>The checkpoint directory, or the <c>.gguf</c> file (its first part) for a GGUF model.</summary>
    public string Directory { get; }

    /// <summary>Whether the model was loaded from a GGUF file (which has no generation_config.json: generation keeps the engine's defaults).</summary>
    public bool IsGguf { get; }

    /// <summary>The architecture.</summary>
    public Qwen2Config Config { get; }

    /// <summary>
    /// Whether the model is an embedding model (<see cref="Qwen2Config.LastTokenPooling"/>: Qwen3-Embedding): it has no
    /// lm_head, so the logits calls throw; <see cref="HiddenStatesBatchInto"/> and <see cref="Embeddings.Qwen2EmbeddingGenerator"/> serve it.
    /// </summary>
    public bool IsEmbeddingModel => Config.LastTokenPooling;

    /// <summary>The sentence-transformers files beside a checkpoint (pooling, named prompts); none for GGUF.</summary>
    internal SentenceTransformersFiles SentenceTransformers { get; }

    /// <summary>
    /// Weight bytes one decode step reads: every mapped tensor, except that an untied embedding contributes only the
    /// row it looks up. Decode speed is bound by this over the memory bandwidth.
    /// </summary>
    public long DecodeBytesPerToken { get; }

    /// <summary>How the model runs.</summary>
    public ModelOptions Options { get; }

    /// <summary>Threads used by a forward call.</summary>
    public int Threads => _pool.Threads;

    /// <summary>
    /// Every tensor in the checkpoint with the file that holds it; shapes outermost first. For a GGUF file the dtype is
    /// the ggml type's name (<c>Q4_K</c>, <c>F32</c>, ...) and the offsets are relative to its data section.
    /// </summary>
    public IEnumerable<(TensorInfo Tensor, string File)> Tensors => _source.Listing;

    /// <summary>Bytes of the mapped weight files' data sections.</summary>
    public long WeightBytes => _source.DataBytes;

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
        ForwardChecks.Ids(Config, inputIds); // before a cache is allocated for a call that would fail anyway
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
        var slice = new BatchSlice { Start = 0, Length = inputIds.Length, Cache = cache, Rows = selection == LogitsSelection.All ? inputIds.Length : 1 };
        Run(inputIds, new ReadOnlySpan<BatchSlice>(in slice), logits, hiddenStates: false);
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
    public void ForwardBatchInto(ReadOnlySpan<BatchInput> inputs, Span<float> logits) => RunBatch(inputs, logits, hiddenStates: false);

    /// <summary>
    /// <see cref="ForwardBatchInto"/> without the lm_head: writes each input's selected rows of the final-normed hidden
    /// state (Hugging Face's <c>last_hidden_state</c>, <see cref="Qwen2Config.HiddenSize"/> floats a row), input after
    /// input, into <paramref name="hidden"/>. <see cref="BatchInput.Logits"/> selects the rows. This is what an embedding
    /// model gives (<see cref="Embeddings.Qwen2EmbeddingGenerator"/> pools and normalises it); any model can give it.
    /// </summary>
    /// <exception cref="CacheFullException">A cache or the block pool cannot take the new tokens; nothing was changed.</exception>
    public void HiddenStatesBatchInto(ReadOnlySpan<BatchInput> inputs, Span<float> hidden) => RunBatch(inputs, hidden, hiddenStates: true);

    /// <summary>The final-normed hidden states of <paramref name="inputIds"/> (one call of <see cref="HiddenStatesBatchInto"/>): rows × hidden_size floats.</summary>
    /// <param name="inputIds">New token ids, each in [0, vocab_size).</param>
    /// <param name="cache">Caches the tokens continue (and are appended to), or null.</param>
    /// <param name="rows">Every position's row, or only the last.</param>
    public float[] HiddenStates(ReadOnlySpan<int> inputIds, PastKeyValues? cache = null, LogitsSelection rows = LogitsSelection.All)
    {
        ForwardChecks.Ids(Config, inputIds);
        var values = new float[(long)(rows == LogitsSelection.All ? inputIds.Length : 1) * Config.HiddenSize];
        var slice = new BatchSlice { Start = 0, Length = inputIds.Length, Cache = cache, Rows = rows == LogitsSelection.All ? inputIds.Length : 1 };
        Run(inputIds, new ReadOnlySpan<BatchSlice>(in slice), values, hiddenStates: true);
        return values;
    }

    private void RunBatch(ReadOnlySpan<BatchInput> inputs, Span<float> output, bool hiddenStates)
    {
        CountLogitsRows(inputs); // an empty batch or input is named here; Run checks the output's room
        long total = 0;
        foreach (var input in inputs) total += input.InputIds.Length;
        if (total > Array.MaxLength) throw new ArgumentException("the batch holds more tokens than one array", nameof(inputs));
        int[] ids = _intPool.Rent((int)total);
        var slices = _slicePool.Rent(inputs.Length);
        try
        {
            int at = 0;
            for (int i = 0; i < inputs.Length; i++)
            {
                var input = inputs[i];
                input.InputIds.Span.CopyTo(ids.AsSpan(at));
                slices[i] = new BatchSlice { Start = at, Length = input.InputIds.Length, Cache = input.Cache, Rows = input.Logits == LogitsSelection.All ? input.InputIds.Length : 1 };
                at += input.InputIds.Length;
            }
            Run(ids.AsSpan(0, at), slices.AsSpan(0, inputs.Length), output, hiddenStates);
        }
        finally
        {
            _intPool.Return(ids);
            _slicePool.Return(slices, clearArray: true);
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

    /// <summary>
    /// A forward call around the math of <see cref="Qwen2Forward"/>: refused once Dispose has begun; checked, and room
    /// taken in every cache, before anything changes; scratch rented for the call and returned after it.
    /// </summary>
    private void Run(ReadOnlySpan<int> ids, ReadOnlySpan<BatchSlice> batch, Span<float> output, bool hiddenStates)
    {
        if (!hiddenStates && _weights.LmHead is null)
            throw new InvalidOperationException($"{Directory} is an embedding model (last-token pooling, no lm_head): it gives embeddings, not logits; use Qwen2EmbeddingGenerator, HiddenStatesBatchInto or qwen2 embed");
        _guard.Enter(this);
        CacheWrite[] writes = _writePool.Rent(batch.Length);
        int cached = 0;
        try
        {
            ForwardChecks.Call(Config, ids, batch, output.Length, hiddenStates ? Config.HiddenSize : Config.VocabSize, hiddenStates ? "hidden" : "logits");
            foreach (var seq in batch)
                if (seq.Cache is { } cache) writes[cached++] = new CacheWrite(cache, seq.Length);
            CacheReservation.Take(writes.AsSpan(0, cached));
            try
            {
                RunWithScratch(ids, batch, output, hiddenStates);
            }
            finally
            {
                CacheReservation.Release(writes.AsSpan(0, cached));
            }
        }
        finally
        {
            _writePool.Return(writes, clearArray: true);
            _guard.Exit();
        }
    }

    private void RunWithScratch(ReadOnlySpan<int> ids, ReadOnlySpan<BatchSlice> batch, Span<float> output, bool hiddenStates)
    {
        int n = ids.Length;
        // Size the attention scratch for full caches, not their current lengths, so every decode step rents the same
        // pooled buffer and a step allocates nothing as the sequences grow.
        int keys = 0;
        foreach (var seq in batch)
        {
            var cache = seq.Cache;
            int past = 0;
            for (int i = 0; cache is not null && i < cache.Layers; i++) past = Math.Max(past, cache[i].Count);
            keys = Math.Max(keys, (cache is not null && cache.Capacity is > 0 and <= 1 << 20 ? Math.Max(past, cache.Capacity) : past) + seq.Length);
        }
        int scores = RunState.ScoreFloats(keys, _pool.Threads);
        long floats = RunState.Floats(Config, n, scores);
        if (floats > Array.MaxLength) throw new ArgumentException($"{n} tokens need more scratch memory than one array holds; split the input", "inputIds");
        float[] buffer = _floatPool.Rent((int)floats);
        int[] positions = _intPool.Rent(n);
        try
        {
            Qwen2Forward.Run(_weights, Config, ids, batch, new RunState(Config, n, scores, buffer, positions), output, hiddenStates, _pool);
        }
        finally
        {
            _floatPool.Return(buffer);
            _intPool.Return(positions);
        }
    }

    /// <summary>
    /// Unmaps the weights and stops the worker threads. Safe while other threads run forward calls: from the moment
    /// Dispose begins, new calls throw <see cref="ObjectDisposedException"/>, and Dispose blocks until the calls already
    /// running have finished (a long prefill included) before it unmaps anything. Later calls to Dispose return at once.
    /// Do not call it from inside a forward call's cache (<see cref="IKvCache"/>) callbacks: it would wait for itself.
    /// </summary>
    public void Dispose()
    {
        if (!_guard.BeginDispose()) return;
        _pool.Dispose();
        _source.Dispose();
        _quantized?.Dispose();
    }
}
