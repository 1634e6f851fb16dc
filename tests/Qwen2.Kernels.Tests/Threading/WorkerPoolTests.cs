namespace Qwen2.Kernels.Tests;

/// <summary>WorkerPool: coverage of the index range, exceptions, disposal, and concurrent callers.</summary>
public class WorkerPoolTests
{
    private unsafe struct Coverage
    {
        public int* Hits;
        public int Threads;
        public int Errors; // calls with an empty range or a worker index outside [0, Threads)
    }

    private static unsafe void Cover(void* state, int start, int end, int worker)
    {
        var c = (Coverage*)state;
        if (start >= end || (uint)worker >= (uint)c->Threads) Interlocked.Increment(ref c->Errors);
        for (int i = start; i < end; i++) Interlocked.Increment(ref c->Hits[i]);
    }

    /// <summary>Runs <see cref="Cover"/> over [0, count) and returns how often each index was visited.</summary>
    private static unsafe int[] RunCover(WorkerPool pool, int count, bool chunked = false)
    {
        var hits = new int[Math.Max(count, 1)];
        fixed (int* h = hits)
        {
            var c = new Coverage { Hits = h, Threads = pool.Threads };
            if (chunked) pool.RunChunked(&Cover, &c, count);
            else pool.Run(&Cover, &c, count);
            Assert.Equal(0, c.Errors);
        }
        return hits[..count];
    }

    private static unsafe void ThrowAt(void* state, int start, int end, int worker)
    {
        int at = *(int*)state;
        if (at >= start && at < end) throw new InvalidOperationException($"work item {at} failed");
    }

    private static unsafe void RunThrowing(WorkerPool pool, int at, int count) => pool.Run(&ThrowAt, &at, count);

    private static unsafe void RunThrowingChunked(WorkerPool pool, int at, int count) => pool.RunChunked(&ThrowAt, &at, count);

    [Fact]
    public void CoversEveryIndexExactlyOnce()
    {
        for (int threads = 1; threads <= 4; threads++)
        {
            using var pool = new WorkerPool(threads);
            Assert.Equal(threads, pool.Threads);
            for (int count = 1; count <= 50; count++)
            {
                var hits = RunCover(pool, count);
                for (int i = 0; i < count; i++)
                    Assert.True(hits[i] == 1, $"threads={threads} count={count}: index {i} visited {hits[i]} times");
            }
        }
    }

    /// <summary>Chunks taken in turn: still every index exactly once, for counts below, at and far above 8 chunks a thread.</summary>
    [Fact]
    public void ChunkedRunsCoverEveryIndexExactlyOnce()
    {
        for (int threads = 1; threads <= 4; threads++)
        {
            using var pool = new WorkerPool(threads);
            foreach (int count in new[] { 1, 2, 7, 8 * threads, 8 * threads + 1, 50, 1000, 4099 })
            {
                var hits = RunCover(pool, count, chunked: true);
                for (int i = 0; i < count; i++)
                    Assert.True(hits[i] == 1, $"threads={threads} count={count}: index {i} visited {hits[i]} times");
            }
        }
    }

    [Fact]
    public void ChunkedRunsRethrowAWorkersException()
    {
        using var pool = new WorkerPool(2);
        var e = Assert.Throws<InvalidOperationException>(() => RunThrowingChunked(pool, 977, 1000));
        Assert.Contains("work item 977", e.Message);
        Assert.Equal(1000, RunCover(pool, 1000, chunked: true).Sum()); // the pool still works after a failed job
    }

    [Fact]
    public void EmptyRunCallsNothing()
    {
        using var pool = new WorkerPool(3);
        RunThrowing(pool, 0, 0); // would throw if item 0 ran
        RunThrowing(pool, 0, -4);
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(4, 0)]   // fails on the calling thread's part
    [InlineData(4, 39)]  // fails on the last worker's part
    [InlineData(3, 20)]
    public void ExceptionReachesTheCallerAndThePoolStillWorks(int threads, int failing)
    {
        using var pool = new WorkerPool(threads);
        for (int round = 0; round < 3; round++)
        {
            var e = Assert.Throws<InvalidOperationException>(() => RunThrowing(pool, failing, 40));
            Assert.Equal($"work item {failing} failed", e.Message);
            Assert.All(RunCover(pool, 40), h => Assert.Equal(1, h));
        }
    }

    [Fact]
    public void DisposeIsIdempotentAndRunAfterDisposeThrows()
    {
        foreach (int threads in new[] { 1, 4 })
        {
            var pool = new WorkerPool(threads);
            Assert.All(RunCover(pool, 10), h => Assert.Equal(1, h));
            pool.Dispose();
            pool.Dispose();
            Assert.Throws<ObjectDisposedException>(() => RunCover(pool, 10));
            Assert.Throws<ObjectDisposedException>(() => RunCover(pool, 1));
        }
    }

    [Fact]
    public async Task ConcurrentCallersEachGetTheirWholeRange()
    {
        using var pool = new WorkerPool(3);
        var callers = Enumerable.Range(0, 4).Select(c => Task.Run(() =>
        {
            for (int round = 0; round < 200; round++)
            {
                int count = 1 + (round * 7 + c) % 50;
                var hits = RunCover(pool, count);
                if (hits.Any(h => h != 1)) return false;
            }
            return true;
        }));
        var results = await Task.WhenAll(callers).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(results, Assert.True);
    }

    [Fact]
    public void ThreadCountMustBePositive()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new WorkerPool(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WorkerPool(-2));
        using var pool = new WorkerPool();
        Assert.Equal(Environment.ProcessorCount, pool.Threads);
    }
}
