namespace Qwen2.Native.Tests;

/// <summary>
/// Bytes the calling thread allocates in each run of an action. A collection (started by tests on other threads)
/// retires this thread's allocation context, and the runtime then counts the context's unused part, up to 8 KB, as
/// allocated by the thread: runs that a collection overlapped are left out and more runs are made. The project turns
/// concurrent GC off, because a background collection's count moves only when it ends, after the run has been read.
/// </summary>
internal static class AllocationProbe
{
    /// <summary>Runs <paramref name="action"/> until <paramref name="clean"/> runs without a collection are measured (at most <paramref name="limit"/> runs).</summary>
    /// <returns>The bytes each of those runs allocated.</returns>
    public static long[] CleanRuns(Action action, int clean, int limit)
    {
        var bytes = new List<long>(clean);
        int runs = 0;
        while (bytes.Count < clean && runs++ < limit)
        {
            int collections = GC.CollectionCount(0);
            long before = GC.GetAllocatedBytesForCurrentThread();
            action();
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            if (GC.CollectionCount(0) == collections) bytes.Add(allocated);
        }
        Assert.True(bytes.Count == clean, $"only {bytes.Count} of {limit} runs ran without a garbage collection");
        return bytes.ToArray();
    }

    /// <summary>Asserts that <paramref name="clean"/> collection-free runs of <paramref name="action"/> allocate nothing.</summary>
    public static void AssertNoAllocation(Action action, int clean, int limit, string what)
    {
        var bytes = CleanRuns(action, clean, limit);
        Assert.True(bytes.All(b => b == 0), $"{what}: bytes allocated by each run: {string.Join(", ", bytes)}");
    }
}
