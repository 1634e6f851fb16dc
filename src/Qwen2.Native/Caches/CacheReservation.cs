namespace Qwen2.Native;

/// <summary>
/// Room for one forward step in every cache it writes, taken before anything changes: either every cache can take its
/// tokens (each ring has the capacity, each paged sequence its limit, and each block pool the blocks all of its
/// sequences will take together) or this throws and nothing was changed. Paged sequences keep the blocks promised to
/// them until <see cref="Release"/>, so no write of the step can find its pool exhausted half way.
/// </summary>
internal static class CacheReservation
{
    /// <summary>Takes room for <paramref name="writes"/>, or throws <see cref="CacheFullException"/> having taken none.</summary>
    public static void Take(ReadOnlySpan<CacheWrite> writes)
    {
        foreach (var w in writes) w.Cache.EnsureRoomFor(w.Tokens);
        // One reservation per pool for all of its sequences, so a batch that fits each sequence alone but not all of
        // them at once fails here.
        for (int i = 0; i < writes.Length; i++)
        {
            if (writes[i].Cache.Paged is not { } first || FirstOfPool(writes, i) != i) continue;
            try
            {
                first.Pool.Reserve(BlocksFor(writes, first.Pool));
            }
            catch (CacheFullException)
            {
                for (int j = 0; j < i; j++)
                    if (writes[j].Cache.Paged is { } earlier && FirstOfPool(writes, j) == j)
                        earlier.Pool.Unreserve(BlocksFor(writes, earlier.Pool));
                throw;
            }
        }
        foreach (var w in writes)
            if (w.Cache.Paged is { } p) p.Promise(p.BlocksNeeded(p.Cache.Count, w.Tokens));
    }

    /// <summary>Returns the blocks a step was promised and did not take.</summary>
    public static void Release(ReadOnlySpan<CacheWrite> writes)
    {
        foreach (var w in writes) w.Cache.Paged?.ReleaseReservation();
    }

    private static int FirstOfPool(ReadOnlySpan<CacheWrite> writes, int i)
    {
        for (int j = 0; j < i; j++)
            if (writes[j].Cache.Paged?.Pool == writes[i].Cache.Paged!.Pool) return j;
        return i;
    }

    // Blocks the writes into one pool take from it: new blocks, and copies of shared ones.
    private static int BlocksFor(ReadOnlySpan<CacheWrite> writes, KvBlockPool pool)
    {
        int total = 0;
        foreach (var w in writes)
            if (w.Cache.Paged is { } p && p.Pool == pool) total += p.BlocksNeeded(p.Cache.Count, w.Tokens);
        return total;
    }
}
