using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Qwen2.Kernels;

/// <summary>
/// Measures how fast this machine reads memory, the ceiling of matrix-vector products (decode reads every weight once
/// per token). Each thread sums its own contiguous part of a buffer much larger than the last-level cache, reading
/// <see cref="StreamsPerThread"/> sequential streams at once with vector loads and no stores, so neither one prefetch
/// stream nor one accumulator's latency limits it; the fastest of a few passes is reported.
/// </summary>
public static unsafe class MemoryBandwidth
{
    /// <summary>Independent sequential streams each thread reads at once.</summary>
    public const int StreamsPerThread = 8;

    /// <summary>Default buffer size: 1 GiB, far larger than any last-level cache, so the reads come from DRAM.</summary>
    public const long DefaultBufferBytes = 1L << 30;

    /// <summary>Default number of timed passes.</summary>
    public const int DefaultPasses = 5;

    // Streams advance in steps of one 64-byte cache line, so every path reads the same bytes per stream.
    private const int LineBytes = 64;

    /// <summary>Measures read bandwidth with <paramref name="threads"/> threads (a pool is created for the call).</summary>
    /// <inheritdoc cref="Measure(WorkerPool, long, int, Isa?)"/>
    public static MemoryBandwidthResult Measure(int threads, long bufferBytes = DefaultBufferBytes, int passes = DefaultPasses, Isa? isa = null)
    {
        using var pool = new WorkerPool(threads);
        return Measure(pool, bufferBytes, passes, isa);
    }

    /// <summary>
    /// Allocates and fills a buffer of <paramref name="bufferBytes"/> (so every page is really backed, not the shared zero
    /// page), reads it once untimed, then <paramref name="passes"/> times on all of <paramref name="pool"/>'s threads.
    /// </summary>
    /// <param name="pool">The threads that read; use the model's thread count to get the ceiling its decode can reach.</param>
    /// <param name="bufferBytes">Bytes to read per pass, a positive multiple of 4; choose many times the last-level cache.</param>
    /// <param name="passes">Timed passes, at least 1.</param>
    /// <param name="isa">Kernel path; <c>null</c> picks <see cref="IsaSupport.Best"/>.</param>
    /// <returns>The fastest pass.</returns>
    public static MemoryBandwidthResult Measure(WorkerPool pool, long bufferBytes = DefaultBufferBytes, int passes = DefaultPasses, Isa? isa = null)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bufferBytes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(passes);
        if (bufferBytes % sizeof(uint) != 0) throw new ArgumentException($"bufferBytes {bufferBytes} is not a multiple of 4", nameof(bufferBytes));
        var path = IsaSupport.Check(isa ?? IsaSupport.Best);
        byte* data = (byte*)NativeMemory.AlignedAlloc((nuint)bufferBytes, 4096);
        try
        {
            for (long done = 0; done < bufferBytes;)
            {
                int chunk = (int)Math.Min(bufferBytes - done, 1 << 30);
                new Span<byte>(data + done, chunk).Fill(0x5A);
                done += chunk;
            }
            Read(data, bufferBytes, pool, path); // untimed: JIT, and the first touch of any page the fill did not map
            double best = double.MaxValue;
            for (int p = 0; p < passes; p++)
            {
                long t0 = Stopwatch.GetTimestamp();
                Read(data, bufferBytes, pool, path);
                best = Math.Min(best, Stopwatch.GetElapsedTime(t0).TotalSeconds);
            }
            return new MemoryBandwidthResult(bufferBytes / best, best, bufferBytes, pool.Threads, StreamsPerThread, passes, path);
        }
        finally
        {
            NativeMemory.AlignedFree(data);
        }
    }

    /// <summary>
    /// Reads <paramref name="length"/> bytes at <paramref name="data"/> once: each of the pool's threads sums one
    /// contiguous part in <see cref="StreamsPerThread"/> streams. Returns the wrapping sum of the buffer's 32-bit words,
    /// which does not depend on the path or the thread count (so the reads cannot be optimized away, and tests can check them).
    /// </summary>
    /// <param name="data">The memory to read; it must stay valid for the call.</param>
    /// <param name="length">Bytes to read, a multiple of 4.</param>
    /// <param name="pool">Threads to split the reading over; <c>null</c> reads on the calling thread.</param>
    /// <param name="isa">Kernel path; <c>null</c> picks <see cref="IsaSupport.Best"/>.</param>
    public static uint Read(byte* data, long length, WorkerPool? pool = null, Isa? isa = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (length % sizeof(uint) != 0) throw new ArgumentException($"length {length} is not a multiple of 4", nameof(length));
        if (data == null && length > 0) throw new ArgumentNullException(nameof(data));
        var path = KernelPath.Record(IsaSupport.Check(isa ?? IsaSupport.Best));
        int parts = pool?.Threads ?? 1;
        uint* sums = stackalloc uint[parts];
        var job = new Job { Data = data, Length = length, Parts = parts, Isa = path, Sums = sums };
        if (pool is null || parts == 1) Run(&job, 0, parts, 0);
        else pool.Run(&Run, &job, parts);
        uint total = 0;
        for (int i = 0; i < parts; i++) total += sums[i];
        return total;
    }

    /// <summary>The wrapping sum of the 32-bit words of <paramref name="data"/>, read on the calling thread as <see cref="Read"/> reads one part.</summary>
    /// <param name="data">Bytes to read, a multiple of 4 long.</param>
    /// <param name="isa">Kernel path; <c>null</c> picks <see cref="IsaSupport.Best"/>.</param>
    public static uint Checksum(ReadOnlySpan<byte> data, Isa? isa = null)
    {
        fixed (byte* p = data) return Read(p, data.Length, null, isa);
    }

    private struct Job
    {
        public byte* Data;
        public long Length;
        public int Parts;
        public Isa Isa;
        public uint* Sums;
    }

    private static void Run(void* state, int start, int end, int worker)
    {
        var job = (Job*)state;
        // Parts are whole groups of StreamsPerThread lines; the last part also takes the remainder.
        long group = (long)StreamsPerThread * LineBytes, groups = job->Length / group;
        for (int part = start; part < end; part++)
        {
            long from = groups * part / job->Parts * group;
            long to = part == job->Parts - 1 ? job->Length : groups * (part + 1) / job->Parts * group;
            job->Sums[part] = SumPart(job->Data + from, to - from, job->Isa);
        }
    }

    private static uint SumPart(byte* p, long length, Isa isa)
    {
        long stream = length / ((long)StreamsPerThread * LineBytes) * LineBytes;
        uint sum = isa switch
        {
            Isa.Vector512 => Streams512(p, stream),
            Isa.Vector256 => Streams256(p, stream),
            _ => StreamsScalar(p, stream),
        };
        for (long i = stream * StreamsPerThread; i < length; i += sizeof(uint)) sum += *(uint*)(p + i);
        return sum;
    }

    private static uint Streams512(byte* p, long stream)
    {
        byte* s0 = p, s1 = s0 + stream, s2 = s1 + stream, s3 = s2 + stream, s4 = s3 + stream, s5 = s4 + stream, s6 = s5 + stream, s7 = s6 + stream;
        Vector512<uint> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        for (long i = 0; i < stream; i += 64)
        {
            a0 += Vector512.Load((uint*)(s0 + i));
            a1 += Vector512.Load((uint*)(s1 + i));
            a2 += Vector512.Load((uint*)(s2 + i));
            a3 += Vector512.Load((uint*)(s3 + i));
            a4 += Vector512.Load((uint*)(s4 + i));
            a5 += Vector512.Load((uint*)(s5 + i));
            a6 += Vector512.Load((uint*)(s6 + i));
            a7 += Vector512.Load((uint*)(s7 + i));
        }
        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7);
    }

    private static uint Streams256(byte* p, long stream)
    {
        byte* s0 = p, s1 = s0 + stream, s2 = s1 + stream, s3 = s2 + stream, s4 = s3 + stream, s5 = s4 + stream, s6 = s5 + stream, s7 = s6 + stream;
        Vector256<uint> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        for (long i = 0; i < stream; i += 64)
        {
            // Two loads per stream cover one 64-byte line.
            a0 += Vector256.Load((uint*)(s0 + i)) + Vector256.Load((uint*)(s0 + i + 32));
            a1 += Vector256.Load((uint*)(s1 + i)) + Vector256.Load((uint*)(s1 + i + 32));
            a2 += Vector256.Load((uint*)(s2 + i)) + Vector256.Load((uint*)(s2 + i + 32));
            a3 += Vector256.Load((uint*)(s3 + i)) + Vector256.Load((uint*)(s3 + i + 32));
            a4 += Vector256.Load((uint*)(s4 + i)) + Vector256.Load((uint*)(s4 + i + 32));
            a5 += Vector256.Load((uint*)(s5 + i)) + Vector256.Load((uint*)(s5 + i + 32));
            a6 += Vector256.Load((uint*)(s6 + i)) + Vector256.Load((uint*)(s6 + i + 32));
            a7 += Vector256.Load((uint*)(s7 + i)) + Vector256.Load((uint*)(s7 + i + 32));
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7);
    }

    /// <summary>The scalar twin: 64-bit loads, each adding its two 32-bit words, so the sum matches the vector paths'.</summary>
    private static uint StreamsScalar(byte* p, long stream)
    {
        ulong a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
        byte* s0 = p, s1 = s0 + stream, s2 = s1 + stream, s3 = s2 + stream, s4 = s3 + stream, s5 = s4 + stream, s6 = s5 + stream, s7 = s6 + stream;
        for (long i = 0; i < stream; i += sizeof(ulong))
        {
            a0 += Words(*(ulong*)(s0 + i));
            a1 += Words(*(ulong*)(s1 + i));
            a2 += Words(*(ulong*)(s2 + i));
            a3 += Words(*(ulong*)(s3 + i));
            a4 += Words(*(ulong*)(s4 + i));
            a5 += Words(*(ulong*)(s5 + i));
            a6 += Words(*(ulong*)(s6 + i));
            a7 += Words(*(ulong*)(s7 + i));
        }
        return (uint)(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7);

        static ulong Words(ulong v) => (v & 0xFFFF_FFFF) + (v >> 32);
    }
}
