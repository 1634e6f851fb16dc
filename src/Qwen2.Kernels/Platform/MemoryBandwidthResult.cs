namespace Qwen2.Kernels;

/// <summary>What <see cref="MemoryBandwidth.Measure(WorkerPool, long, int, Isa?)"/> found.</summary>
/// <param name="BytesPerSecond">Bytes read per second in the fastest pass.</param>
/// <param name="BestSeconds">Duration of the fastest pass.</param>
/// <param name="BufferBytes">Bytes read by one pass.</param>
/// <param name="Threads">Threads that read at once.</param>
/// <param name="StreamsPerThread">Sequential streams each thread interleaves (<see cref="MemoryBandwidth.StreamsPerThread"/>).</param>
/// <param name="Passes">Timed passes; the fastest is reported.</param>
/// <param name="Isa">Kernel path of the loads.</param>
public sealed record MemoryBandwidthResult(double BytesPerSecond, double BestSeconds, long BufferBytes, int Threads, int StreamsPerThread, int Passes, Isa Isa)
{
    /// <summary><see cref="BytesPerSecond"/> in decimal gigabytes (1e9 bytes) per second, the unit decode speeds are quoted in.</summary>
    public double GigabytesPerSecond => BytesPerSecond / 1e9;
}
