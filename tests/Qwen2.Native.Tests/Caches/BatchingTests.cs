using Qwen2.Kernels;

namespace Qwen2.Native.Tests;

/// <summary>
/// Batched forwards over a <see cref="BatchingKvCache"/>: every sequence's logits against the independent PyTorch
/// reference and against the same sequence run alone, whatever joins, leaves or shares blocks around it.
/// </summary>
public class BatchingTests
{
    private const float Tolerance = 1e-4f;

    public static TheoryData<string> Models() => ["tiny-bf16", "tiny-f32", "untied-f16-mha", "headdim-bf16", "sliding-f32", "sharded-bf16"];

    /// <summary>The reference's token stream (prompt, then its greedy tokens) and the logits it gives at each position.</summary>
    private sealed class Reference
    {
        public Reference(string name)
        {
            var g = Fixtures.Golden(name);
            Stream = [.. g.Tokens, .. g.Greedy];
            // Logits at position p see Stream[0..p]; past the prompt they are the greedy steps' logits.
            Logits = [.. g.Logits, .. g.GreedyLogits.Skip(1)];
            PromptLength = g.Tokens.Length;
        }

        public int[] Stream { get; }
        public float[][] Logits { get; }
        public int PromptLength { get; }
        public int Checked => Logits.Length; // positions with a reference row

        public void Check(ReadOnlySpan<float> row, int position, string what)
        {
            var expected = Logits[position];
            Assert.Equal(expected.Length, row.Length);
            for (int i = 0; i < expected.Length; i++)
                if (MathF.Abs(expected[i] - row[i]) > Tolerance)
                    Assert.Fail($"{what}: logit {i} at position {position} is {row[i]}, the reference's {expected[i]}");
            // Past the prompt the reference decoded greedily: the next token must be its argmax.
            if (position >= PromptLength - 1 && position + 1 < Stream.Length)
                Assert.True(Stream[position + 1] == Argmax(row), $"{what}: greedy token at position {position}");
        }
    }

    private static int Argmax(ReadOnlySpan<float> row) => System.Numerics.Tensors.TensorPrimitives.IndexOfMax(row);

    private static Qwen2Model Load(string name, int threads = 2) => Qwen2Model.Load(Fixtures.Model(name), new ModelOptions { Threads = threads });

    /// <summary>One sequence of a scripted run: when it joins, how its stream is cut into calls, when it leaves.</summary>
    private sealed record Script(int JoinStep, int[] Chunks, int? LeaveStep = null);

    [Theory]
    [MemberData(nameof(Models))]
    public void MixedLengthsJoiningAndLeaving_MatchTheReferenceAndTheSequenceAlone(string name)
    {
        using var model = Load(name);
        var reference = new Reference(name);
        int n = reference.Checked;
        // Chunked prefills of different lengths, single-token steps, sequences that join late or leave early; one
        // joins after another has left and reuses its blocks.
        Script[] scripts =
        [
            new(0, [reference.PromptLength, .. Ones(n - reference.PromptLength)]),
            new(0, [5, .. Ones(n - 5)], LeaveStep: 9),
            new(2, Ones(n)),
            new(4, [9, 3, .. Ones(n - 12)]),
            new(10, [7, .. Ones(n - 7)]),
            new(10, [1, 2, 4, .. Ones(n - 7)]),
        ];
        var batch = new BatchingKvCache(model, new BatchingKvCacheOptions { BlockSize = 4 });
        var caches = new PastKeyValues?[scripts.Length];
        var fed = new int[scripts.Length];
        var calls = new int[scripts.Length];
        var logs = new List<float[]>[scripts.Length];
        for (int i = 0; i < scripts.Length; i++) logs[i] = [];
        int maxBatch = 0;
        for (int step = 0; ; step++)
        {
            var inputs = new List<BatchInput>();
            var who = new List<int>();
            for (int i = 0; i < scripts.Length; i++)
            {
                var s = scripts[i];
                if (step == s.JoinStep) caches[i] = batch.Join();
                if (step == s.LeaveStep) { batch.Leave(caches[i]!); caches[i] = null; continue; }
                if (caches[i] is null || calls[i] >= s.Chunks.Length) continue;
                int len = s.Chunks[calls[i]++];
                inputs.Add(new BatchInput(reference.Stream.AsMemory(fed[i], len), caches[i], LogitsSelection.All));
                who.Add(i);
            }
            if (inputs.Count == 0 && step > 10) break;
            if (inputs.Count == 0) continue;
            maxBatch = Math.Max(maxBatch, inputs.Count);
            var outputs = model.ForwardBatch(inputs.ToArray());
            for (int j = 0; j < who.Count; j++)
            {
                int i = who[j], len = inputs[j].InputIds.Length;
                for (int t = 0; t < len; t++)
                {
                    reference.Check(outputs[j][t], fed[i] + t, $"{name} sequence {i} at step {step} (batch of {inputs.Count})");
                    logs[i].Add(outputs[j][t].ToArray());
                }
                fed[i] += len;
                Assert.Equal(fed[i], caches[i]!.Position);
            }
        }
        Assert.True(maxBatch >= 4, $"the script ran at most {maxBatch} sequences at once");
        Assert.True(fed[1] < n);

        // Alone, each sequence cut into the same calls gives the same bits: batching changes no sum's order.
        for (int i = 0; i < scripts.Length; i++)
        {
            var alone = model.CreateCache();
            int at = 0, row = 0;
            foreach (int len in scripts[i].Chunks)
            {
                if (at + len > fed[i]) break;
                var logits = model.Forward(reference.Stream.AsSpan(at, len), alone, useCache: true, LogitsSelection.All).Logits;
                for (int t = 0; t < len; t++) BitsEqual(logs[i][row++], logits[t].ToArray(), $"{name} sequence {i} alone, position {at + t}");
                at += len;
            }
            Assert.Equal(logs[i].Count, row);
        }
        foreach (var c in caches.Where(c => c is not null)) batch.Leave(c!);
        Assert.Equal(0, batch.Pool.BlocksInUse);
    }

    private static void BitsEqual(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToUInt32Bits(expected[i]) != BitConverter.SingleToUInt32Bits(actual[i]))
                Assert.Fail($"{what}: logit {i} is {actual[i]:R}, alone {expected[i]:R}");
    }

    private static int[] Ones(int count) => Enumerable.Repeat(1, Math.Max(0, count)).ToArray();

    [Theory]
    [MemberData(nameof(Models))]
    public void ForkedSequencesShareTheirPromptUntilTheyDiverge(string name)
    {
        using var model = Load(name);
        var reference = new Reference(name);
        var batch = new BatchingKvCache(model, new BatchingKvCacheOptions { BlockSize = 4 });
        var pool = batch.Pool;
        var a = batch.Join();
        model.ForwardBatch([new BatchInput(reference.Stream.AsMemory(0, 10), a)]);
        Assert.Equal(3, pool.BlocksInUse); // 10 tokens in blocks of 4

        // b shares all of a's 10 tokens (the third block half full); c shares the first 8 (two whole blocks).
        var b = batch.Fork(a);
        var c = batch.Fork(a, 8);
        Assert.Equal((10, 8), (b.Position, c.Position));
        Assert.Equal(3, pool.BlocksInUse);
        Assert.Equal(3, pool.BlocksShared);

        // a follows the reference; b diverges into the half-full shared block (copy-on-write); c continues the
        // reference from 8 into a fresh block.
        int diverged = (reference.Stream[10] + 1) % model.Config.VocabSize;
        var outputs = model.ForwardBatch([
            new BatchInput(reference.Stream.AsMemory(10, 1), a),
            new BatchInput(new[] { diverged }, b),
            new BatchInput(reference.Stream.AsMemory(8, 2), c, LogitsSelection.All)]);
        reference.Check(outputs[0][0], 10, $"{name} a after the fork");
        reference.Check(outputs[2][0], 8, $"{name} c after the fork");
        reference.Check(outputs[2][1], 9, $"{name} c after the fork");
        Assert.Equal(5, pool.BlocksInUse); // a and b each own a copy of block 2; c owns its own block 2
        Assert.Equal(2, pool.BlocksShared); // blocks 0 and 1, held by all three

        // b, alone with a ring cache, computes the same bits: the copy carried every layer's rows.
        var alone = model.CreateCache();
        model.Forward(reference.Stream.AsSpan(0, 10), alone, useCache: true);
        var bAlone = model.Forward([diverged], alone, useCache: true).Logits;
        BitsEqual(bAlone[0].ToArray(), outputs[1][0].ToArray(), $"{name} b against b alone");

        // Leaving returns only what nobody else holds; the others keep reading the shared blocks correctly.
        batch.Leave(a);
        Assert.Equal(4, pool.BlocksInUse);
        for (int p = 10; p < reference.Checked - 1; p++)
        {
            var next = model.ForwardBatch([new BatchInput(reference.Stream.AsMemory(p, 1), c), new BatchInput(new[] { diverged }, b)]);
            reference.Check(next[0][0], p, $"{name} c after a left");
        }
        batch.Leave(b);
        batch.Leave(c);
        Assert.Equal((0, 0), (pool.BlocksInUse, pool.BlocksShared));
        Assert.True(pool.BlocksAllocated > 0);
        pool.Trim();
        Assert.Equal(0, pool.BlocksAllocated);
    }

    private static object Snapshot(PastKeyValues cache)
    {
        var rows = new List<float[]>();
        foreach (var layer in cache)
        {
            var held = layer.Held;
            int row = layer.KvHeads * layer.HeadDim;
            for (int k = 0; k < held.Count; k++)
            {
                rows.Add(held.KeyRow(k, row).ToArray());
                rows.Add(held.ValueRow(k, row).ToArray());
            }
        }
        return (cache.Position, cache.Count, string.Join(",", rows.SelectMany(r => r).Select(BitConverter.SingleToInt32Bits)));
    }

    [Fact]
    public void AnExhaustedPoolFailsTheWholeStepAndChangesNothing()
    {
        using var model = Load("tiny-bf16");
        var reference = new Reference("tiny-bf16");
        var probe = new BatchingKvCache(model, new BatchingKvCacheOptions { BlockSize = 4 });
        var batch = new BatchingKvCache(model, new BatchingKvCacheOptions { BlockSize = 4, MaxBytes = 5 * probe.Pool.BlockBytes });
        Assert.Equal(5, batch.Pool.MaxBlocks);
        var a = batch.Join();
        var b = batch.Join();
        model.ForwardBatch([new BatchInput(reference.Stream.AsMemory(0, 8), a), new BatchInput(reference.Stream.AsMemory(0, 7), b)]);
        Assert.Equal(4, batch.Pool.BlocksInUse);

        // Each fits alone (one block free), both together need two: the step fails before either is touched.
        var before = (Snapshot(a), Snapshot(b), batch.Pool.BlocksInUse, batch.Pool.BlocksAvailable);
        var e = Assert.Throws<CacheFullException>(() => model.ForwardBatch([
            new BatchInput(reference.Stream.AsMemory(8, 3), a), new BatchInput(reference.Stream.AsMemory(7, 4), b)]));
        Assert.Contains("1 of 5 blocks", e.Message);
        Assert.Equal(before, (Snapshot(a), Snapshot(b), batch.Pool.BlocksInUse, batch.Pool.BlocksAvailable));

        // Either one alone still fits, and the run goes on from exactly where it stood.
        var logits = model.ForwardBatch([new BatchInput(reference.Stream.AsMemory(8, 3), a, LogitsSelection.All)])[0];
        for (int t = 0; t < 3; t++) reference.Check(logits[t], 8 + t, "a after the failed step");
        Assert.Equal((5, 0), (batch.Pool.BlocksInUse, batch.Pool.BlocksAvailable));
        Assert.Throws<CacheFullException>(() => model.Forward(reference.Stream.AsSpan(7, 2), b, useCache: true));
        batch.Leave(a);
        logits = model.ForwardBatch([new BatchInput(reference.Stream.AsMemory(7, 4), b, LogitsSelection.All)])[0];
        for (int t = 0; t < 4; t++) reference.Check(logits[t], 7 + t, "b after a left");

        // The per-sequence limit fails the same way.
        var capped = new BatchingKvCache(model, new BatchingKvCacheOptions { BlockSize = 4, MaxTokensPerSequence = 6 });
        var s = capped.Join();
        model.Forward(reference.Stream.AsSpan(0, 5), s, useCache: true);
        var snap = Snapshot(s);
        Assert.Throws<CacheFullException>(() => model.ForwardBatch([new BatchInput(reference.Stream.AsMemory(5, 2), s)]));
        Assert.Equal(snap, Snapshot(s));
    }

    [Fact]
    public void BadBatchesAreRefusedBeforeAnythingChanges()
    {
        using var model = Load("tiny-bf16");
        var reference = new Reference("tiny-bf16");
        var batch = new BatchingKvCache(model);
        var a = batch.Join();
        var b = batch.Join();
        model.ForwardBatch([new BatchInput(reference.Stream.AsMemory(0, 3), a), new BatchInput(reference.Stream.AsMemory(0, 2), b)]);
        var before = (Snapshot(a), Snapshot(b), batch.Pool.BlocksInUse, batch.Pool.BlocksAvailable);

        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => model.ForwardBatch([])).Message);
        Assert.Contains("input 1 has no tokens", Assert.Throws<ArgumentException>(() =>
            model.ForwardBatch([new BatchInput(new[] { 1 }, a), new BatchInput(Array.Empty<int>(), b)])).Message);
        Assert.Contains("share one cache", Assert.Throws<ArgumentException>(() =>
            model.ForwardBatch([new BatchInput(new[] { 1 }, a), new BatchInput(new[] { 2 }, a)])).Message);
        var bad = Assert.Throws<ArgumentOutOfRangeException>(() =>
            model.ForwardBatch([new BatchInput(new[] { 1 }, a), new BatchInput(new[] { 2, model.Config.VocabSize }, b)]));
        Assert.Contains($"is {model.Config.VocabSize}", bad.Message);
        var foreign = PastKeyValues.CreateRing(1, 8, model.Config.NumKeyValueHeads, model.Config.HeadDim);
        Assert.Contains("another model", Assert.Throws<ArgumentException>(() =>
            model.ForwardBatch([new BatchInput(new[] { 1 }, a), new BatchInput(new[] { 2 }, foreign)])).Message);
        Assert.Throws<ArgumentException>(() => model.ForwardBatchInto([new BatchInput(new[] { 1 }, a), new BatchInput(new[] { 2 }, b)], new float[model.Config.VocabSize]));
        Assert.Equal(before, (Snapshot(a), Snapshot(b), batch.Pool.BlocksInUse, batch.Pool.BlocksAvailable));

        // Sequences of another batching cache, or that have left, are refused by name.
        var other = new BatchingKvCache(model);
        Assert.Contains("does not belong", Assert.Throws<ArgumentException>(() => other.Leave(a)).Message);
        Assert.Throws<ArgumentException>(() => other.Fork(a));
        Assert.Throws<ArgumentOutOfRangeException>(() => batch.Fork(a, 4));
        batch.Leave(b);
        Assert.Throws<ArgumentException>(() => batch.Leave(b));
        Assert.Throws<ObjectDisposedException>(() => model.ForwardBatch([new BatchInput(new[] { 1 }, b)]));
        Assert.Equal(before.Item1, Snapshot(a));
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void APagedSequenceRunsAloneThroughTheCommonInterface(string name)
    {
        using var model = Load(name);
        var reference = new Reference(name);
        var batch = new BatchingKvCache(model, new BatchingKvCacheOptions { BlockSize = 2 });
        var cache = batch.Join();
        var logits = model.Forward(reference.Stream.AsSpan(0, reference.PromptLength), cache, useCache: true).Logits;
        for (int t = 0; t < reference.PromptLength; t++) reference.Check(logits[t], t, $"{name} paged prefill");
        for (int p = reference.PromptLength; p < reference.Checked; p++)
            reference.Check(model.Forward(reference.Stream.AsSpan(p, 1), cache, useCache: true).Logits[0], p, $"{name} paged decode");

        // Rewinding gives blocks back and the sequence continues as if the rewound tokens never came.
        int held = cache.Count;
        cache.Rewind(7);
        Assert.Equal((held - 7 + 1) / 2, batch.Pool.BlocksInUse);
        reference.Check(model.Forward(reference.Stream.AsSpan(held - 7, 1), cache, useCache: true).Logits[0], held - 7, $"{name} after rewind");
        cache.Reset();
        Assert.Equal(0, batch.Pool.BlocksInUse);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void RingPagedAndUncachedInputsMixInOneBatch(string name)
    {
        using var model = Load(name);
        var reference = new Reference(name);
        var ring = model.CreateCache(64);
        var paged = new BatchingKvCache(model, new BatchingKvCacheOptions { BlockSize = 4 }).Join();
        // Prefill of different lengths in one call: a ring, a paged sequence, and a prompt with no cache at all.
        var first = model.ForwardBatch([
            new BatchInput(reference.Stream.AsMemory(0, 7), ring, LogitsSelection.All),
            new BatchInput(reference.Stream.AsMemory(0, 3), paged, LogitsSelection.All),
            new BatchInput(reference.Stream.AsMemory(0, 10), null, LogitsSelection.All)]);
        for (int t = 0; t < 7; t++) reference.Check(first[0][t], t, $"{name} ring prefill");
        for (int t = 0; t < 3; t++) reference.Check(first[1][t], t, $"{name} paged prefill");
        for (int t = 0; t < 10; t++) reference.Check(first[2][t], t, $"{name} uncached");
        for (int step = 0; step < 5; step++)
        {
            var next = model.ForwardBatch([
                new BatchInput(reference.Stream.AsMemory(7 + step, 1), ring),
                new BatchInput(reference.Stream.AsMemory(3 + step, 1), paged)]);
            reference.Check(next[0][0], 7 + step, $"{name} ring decode");
            reference.Check(next[1][0], 3 + step, $"{name} paged decode");
        }
        Assert.Equal((12, 8), (ring.Position, paged.Position));
    }

    [Fact]
    public void PoolMemoryFollowsTheTokensHeld()
    {
        using var model = Load("tiny-bf16");
        var batch = new BatchingKvCache(model, new BatchingKvCacheOptions { BlockSize = 16 });
        int[] lengths = [3, 40, 17, 100, 64, 1];
        var rnd = new Random(5);
        var seqs = lengths.Select(_ => batch.Join()).ToArray();
        model.ForwardBatch(lengths.Select((len, i) => new BatchInput(Enumerable.Range(0, len).Select(_ => rnd.Next(model.Config.VocabSize)).ToArray(), seqs[i])).ToArray());
        Assert.Equal(lengths.Sum(), batch.TokensHeld);
        int blocks = lengths.Sum(l => (l + 15) / 16);
        Assert.Equal(blocks, batch.Pool.BlocksInUse);
        Assert.Equal(blocks * batch.Pool.BlockBytes, batch.Pool.BytesInUse);
        Assert.Equal(batch.Pool.TokenBytes * 16, batch.Pool.BlockBytes);
        Assert.Equal(2L * model.Config.NumHiddenLayers * model.Config.NumKeyValueHeads * model.Config.HeadDim * sizeof(float), batch.Pool.TokenBytes);
        Assert.Equal(seqs, batch.Sequences);
    }

    [Fact]
    public void ABatchedDecodeStepAllocatesNothing()
    {
        using var model = Load("tiny-bf16");
        var batch = new BatchingKvCache(model, new BatchingKvCacheOptions { BlockSize = 4 });
        var tokens = new int[4][];
        var inputs = new BatchInput[4];
        for (int i = 0; i < 4; i++)
        {
            tokens[i] = [i + 1];
            var s = batch.Join();
            model.Forward(Enumerable.Range(1, 3 + 5 * i).ToArray(), s, useCache: true);
            inputs[i] = new BatchInput(tokens[i], s);
        }
        var logits = new float[4 * model.Config.VocabSize];
        void Steps(int count)
        {
            for (int step = 0; step < count; step++)
            {
                model.ForwardBatchInto(inputs, logits);
                for (int i = 0; i < 4; i++) tokens[i][0] = Argmax(logits.AsSpan(i * model.Config.VocabSize, model.Config.VocabSize));
            }
        }
        // Warm up over more steps than the measurement can take, then rewind: the measured steps refill blocks the
        // pool already holds. Blocks of 4, so an allocation in the step itself would show in many of them.
        Steps(100);
        foreach (var input in inputs) input.Cache!.Rewind(100);
        AllocationProbe.AssertNoAllocation(() => Steps(1), clean: 30, limit: 100, "batched decode steps");
    }
}
