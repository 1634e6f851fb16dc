namespace Qwen2.Kernels.Tests;

/// <summary>The read-bandwidth probe: every path and thread count reads every byte (same checksum as a plain loop). Speeds are never asserted.</summary>
public unsafe class MemoryBandwidthTests
{
    private static uint Reference(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        foreach (uint w in System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(data)) sum += w;
        return sum;
    }

    private static byte[] RandomBytes(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    public static TheoryData<Isa, int> IsasAndLengths()
    {
        var data = new TheoryData<Isa, int>();
        // Below one group of streams, exactly one, and awkward remainders on both sides.
        foreach (var isa in IsaSupport.Supported)
            foreach (int n in new[] { 0, 4, 60, 512, 516, 4096 + 12, 100_004, 1 << 20 }) data.Add(isa, n);
        return data;
    }

    [Theory]
    [MemberData(nameof(IsasAndLengths))]
    public void ChecksumReadsEveryWordOnEveryPath(Isa isa, int length)
    {
        var data = RandomBytes(length, Cases.Seed(length, (int)isa));
        Assert.Equal(Reference(data), Paths.Forced(isa, "Checksum", () => MemoryBandwidth.Checksum(data, isa)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void ReadSplitAcrossThreadsReadsEveryWord(int threads)
    {
        var data = RandomBytes((1 << 20) + 4 * 37, threads);
        using var pool = new WorkerPool(threads);
        foreach (var isa in IsaSupport.Supported)
            fixed (byte* p = data)
            {
                KernelPath.Reset();
                Assert.Equal(Reference(data), MemoryBandwidth.Read(p, data.Length, pool, isa));
                Paths.AssertRan(isa, $"Read on {threads} threads");
            }
    }

    [Fact]
    public void MeasureReportsItsSettingsAndAPositiveRate()
    {
        var r = MemoryBandwidth.Measure(threads: 2, bufferBytes: 4 << 20, passes: 2);
        Assert.Equal(4L << 20, r.BufferBytes);
        Assert.Equal(2, r.Threads);
        Assert.Equal(2, r.Passes);
        Assert.Equal(MemoryBandwidth.StreamsPerThread, r.StreamsPerThread);
        Assert.Equal(IsaSupport.Best, r.Isa);
        Assert.True(r.BestSeconds > 0 && double.IsFinite(r.BytesPerSecond) && r.BytesPerSecond > 0);
        Assert.Equal(r.BytesPerSecond / 1e9, r.GigabytesPerSecond);
    }

    [Fact]
    public void BadArgumentsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => MemoryBandwidth.Measure(threads: 0, bufferBytes: 1024));
        Assert.Throws<ArgumentOutOfRangeException>(() => MemoryBandwidth.Measure(threads: 1, bufferBytes: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => MemoryBandwidth.Measure(threads: 1, bufferBytes: 1024, passes: 0));
        Assert.Throws<ArgumentException>(() => MemoryBandwidth.Measure(threads: 1, bufferBytes: 1022));
        Assert.Throws<ArgumentException>(() => MemoryBandwidth.Checksum(new byte[6]));
    }
}
