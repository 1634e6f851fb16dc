namespace Qwen2.Native;

/// <summary>
/// Lets a model be disposed while other threads run forward calls: from the moment <see cref="BeginDispose"/> runs,
/// new calls are refused, and it waits for the calls already running before the caller unmaps anything.
/// </summary>
internal sealed class CallGuard
{
    private readonly object _drained = new();
    private int _disposed;  // 1 once Dispose has begun: new calls are refused
    private int _inFlight;  // calls between their entry check and their end

    /// <summary>Counts a call in, or throws <see cref="ObjectDisposedException"/> for <paramref name="owner"/>.</summary>
    public void Enter(object owner)
    {
        // Counted in before the disposed check (both full fences): BeginDispose either sees this call and waits for
        // it, or this call sees BeginDispose and backs out, never reading weights that are being unmapped.
        Interlocked.Increment(ref _inFlight);
        if (Volatile.Read(ref _disposed) != 0)
        {
            Exit();
            throw new ObjectDisposedException(owner.GetType().FullName);
        }
    }

    /// <summary>Counts a call out.</summary>
    public void Exit()
    {
        if (Interlocked.Decrement(ref _inFlight) == 0 && Volatile.Read(ref _disposed) != 0)
            lock (_drained) Monitor.PulseAll(_drained);
    }

    /// <summary>Refuses new calls and waits for running ones; false when disposal had already begun.</summary>
    public bool BeginDispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return false;
        lock (_drained)
        {
            while (Volatile.Read(ref _inFlight) != 0) Monitor.Wait(_drained);
        }
        return true;
    }
}
