using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Qwen2.Kernels;

/// <summary>
/// A persistent pool of worker threads for the many short parallel loops of a forward pass.
/// Work [0, count) is cut into one contiguous part per thread, always the same way for the same count, and the
/// calling thread runs part 0; or, for jobs whose items cost the same wherever they run, handed out in chunks to
/// whichever thread is free (<see cref="RunChunked"/>). Between jobs the workers spin briefly, then sleep.
/// </summary>
/// <remarks>
/// One job runs at a time; concurrent callers queue on a lock. Which thread computes an element never changes
/// what it computes, so results are bit-identical for any thread count.
/// </remarks>
public sealed unsafe class WorkerPool : IDisposable
{
    private static readonly long SpinTicks = Stopwatch.Frequency / 10_000; // 100 µs: spans the gap between two matrix products

    private readonly Thread[] _workers;
    private readonly object _runLock = new();
    private readonly object _sleepLock = new();
    private delegate*<void*, int, int, int, void> _work;
    private void* _state;
    private int _count;
    private int _chunk; // 0: one contiguous part per thread; else the size of the chunks threads take in turn
    private int _next;
    private int _generation;
    private int _pending;
    private volatile bool _disposed;
    private ExceptionDispatchInfo? _error;

    /// <summary>Creates a pool that runs jobs on <paramref name="threads"/> threads, the caller's included.</summary>
    /// <param name="threads">Thread count, at least 1; <c>null</c> means <see cref="Environment.ProcessorCount"/>.</param>
    public WorkerPool(int? threads = null)
    {
        int t = threads ?? Environment.ProcessorCount;
        if (t < 1) throw new ArgumentOutOfRangeException(nameof(threads), t, "thread count must be at least 1");
        Threads = t;
        _workers = new Thread[t - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            int index = i + 1;
            _workers[i] = new Thread(() => WorkerLoop(index)) { IsBackground = true, Name = $"qwen2-worker-{index}" };
            _workers[i].Start();
        }
    }

    /// <summary>Threads that run a job, the caller's included.</summary>
    public int Threads { get; }

    /// <summary>Runs <paramref name="work"/>(state, start, end, worker) over [0, <paramref name="count"/>) split across the threads.</summary>
    internal void Run(delegate*<void*, int, int, int, void> work, void* state, int count) => Run(work, state, count, 0);

    /// <summary>
    /// Runs <paramref name="work"/>(state, start, end, worker) over [0, <paramref name="count"/>) in chunks of about
    /// count / (8 · threads) items, each taken by whichever thread is free: a thread that started late or runs slower
    /// (a busy sibling hyperthread) takes fewer, so no thread waits long for another. For jobs whose results do not
    /// depend on which thread or chunk computes an item.
    /// </summary>
    internal void RunChunked(delegate*<void*, int, int, int, void> work, void* state, int count) =>
        Run(work, state, count, Math.Max(1, count / (8 * Threads)));

    private void Run(delegate*<void*, int, int, int, void> work, void* state, int count, int chunk)
    {
        if (count <= 0) return;
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Threads == 1 || count == 1)
        {
            work(state, 0, count, 0);
            return;
        }
        lock (_runLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _work = work; _state = state; _count = count; _chunk = chunk; _next = 0; _error = null;
            Volatile.Write(ref _pending, _workers.Length);
            Interlocked.Increment(ref _generation);
            lock (_sleepLock) Monitor.PulseAll(_sleepLock);
            try
            {
                RunPart(0);
            }
            finally
            {
                var spin = new SpinWait();
                while (Volatile.Read(ref _pending) != 0) spin.SpinOnce(-1);
            }
            _error?.Throw();
        }
    }

    private void RunPart(int part)
    {
        if (_chunk > 0)
        {
            int c = _chunk;
            for (int s = Interlocked.Add(ref _next, c) - c; s < _count; s = Interlocked.Add(ref _next, c) - c)
                _work(_state, s, Math.Min(_count, s + c), part);
            return;
        }
        int start = (int)((long)_count * part / Threads), end = (int)((long)_count * (part + 1) / Threads);
        if (start < end) _work(_state, start, end, part);
    }

    private void WorkerLoop(int index)
    {
        int seen = 0;
        while (true)
        {
            long until = Stopwatch.GetTimestamp() + SpinTicks;
            while (Volatile.Read(ref _generation) == seen && !_disposed && Stopwatch.GetTimestamp() < until) Thread.SpinWait(16);
            if (Volatile.Read(ref _generation) == seen)
            {
                lock (_sleepLock)
                {
                    while (Volatile.Read(ref _generation) == seen && !_disposed) Monitor.Wait(_sleepLock);
                }
            }
            if (_disposed) return;
            seen = Volatile.Read(ref _generation);
            try
            {
                RunPart(index);
            }
            catch (Exception e)
            {
                _error ??= ExceptionDispatchInfo.Capture(e);
            }
            Interlocked.Decrement(ref _pending);
        }
    }

    /// <summary>Stops the workers once the running job, if any, is done.</summary>
    public void Dispose()
    {
        lock (_runLock)
        {
            if (_disposed) return;
            _disposed = true;
            lock (_sleepLock) Monitor.PulseAll(_sleepLock);
        }
        foreach (var t in _workers) t.Join();
    }
}
