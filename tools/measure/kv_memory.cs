#:project ../../src/Qwen2.Native/Qwen2.Native.csproj
// Measures KV-cache memory for a mixed-length batch on Qwen2-0.5B's cache shape (24 layers, 2 kv heads, head dim 64,
// float32): one preallocated ring per sequence (padded to a capacity, or to the longest sequence) against the paged
// BatchingKvCache, without and with a shared prefix. Each figure is what the caches hold (bytes of arrays/blocks) and
// the process's anonymous resident memory grown while filling them (RssAnon, after a full GC).
// Each layout runs in its own process, so memory the GC kept from another layout does not hide growth.
// usage: for l in header ring4096 ringmax paged16 paged32 shared; do dotnet run -c Release tools/measure/kv_memory.cs $l; done
//        (a second argument gives other lengths; default 37,120,512,900,64,2048,300,15)
using System.Globalization;
using Qwen2.Native;

const int Layers = 24, KvHeads = 2, HeadDim = 64, Row = KvHeads * HeadDim;
string layout = args.Length > 0 ? args[0] : "header";
int[] lengths = args.Length > 1 ? args[1].Split(',').Select(int.Parse).ToArray() : [37, 120, 512, 900, 64, 2048, 300, 15];
long tokens = lengths.Sum(l => (long)l), tokenBytes = 2L * Layers * Row * sizeof(float);
var rows = new float[2048 * Row];
new Random(1).NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(rows.AsSpan()));

static long Anon()
{
    GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
    foreach (var l in File.ReadLines("/proc/self/status"))
        if (l.StartsWith("RssAnon:", StringComparison.Ordinal)) return long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    return -1;
}
void Fill(PastKeyValues cache, int from, int to)
{
    for (int t = from; t < to; t += 2048)
    {
        int n = Math.Min(2048, to - t);
        foreach (var layer in cache) layer.Append(rows.AsSpan(0, n * Row), rows.AsSpan(0, n * Row), n);
    }
}
string MiB(long b) => (b / 1048576.0).ToString("F2", CultureInfo.InvariantCulture);
if (layout == "header")
{
    Console.WriteLine($"lengths {string.Join(", ", lengths)}: {tokens} tokens, {tokenBytes} B of keys and values per token, exactly {MiB(tokens * tokenBytes)} MiB");
    Console.WriteLine();
    Console.WriteLine("| layout | cache bytes | MiB | / exact | resident growth (MiB) |");
    Console.WriteLine("| --- | ---: | ---: | ---: | ---: |");
    return;
}
void Report(string name, long bytes, long grown) =>
    Console.WriteLine($"| {name} | {bytes} | {MiB(bytes)} | {(double)bytes / (tokens * tokenBytes):F3} | {MiB(grown)} |");

foreach (int capacity in layout switch { "ring4096" => new[] { 4096 }, "ringmax" => [lengths.Max()], _ => [] })
{
    long before = Anon();
    var rings = lengths.Select(l => PastKeyValues.CreateRing(Layers, capacity, KvHeads, HeadDim)).ToArray();
    for (int i = 0; i < lengths.Length; i++) Fill(rings[i], 0, lengths[i]);
    long reserved = rings.Sum(r => r.Sum(l => ((RingKvCache)l).ReservedBytes));
    Report($"padded: a ring of {capacity} tokens per sequence", reserved, Anon() - before);
    GC.KeepAlive(rings);
}
foreach (int block in layout switch { "paged16" => new[] { 16 }, "paged32" => [32], _ => [] })
{
    long before = Anon();
    var batch = new BatchingKvCache(Layers, KvHeads, HeadDim, 32768, new BatchingKvCacheOptions { BlockSize = block });
    foreach (int l in lengths) Fill(batch.Join(), 0, l);
    Report($"paged, blocks of {block}", batch.Pool.BytesInUse, Anon() - before);
    GC.KeepAlive(batch);
}
if (layout == "shared")
{
    // The sequences of 256 tokens or more start with the same 256-token prompt (16 whole blocks): one computes it, the others fork it.
    long before = Anon();
    var batch = new BatchingKvCache(Layers, KvHeads, HeadDim, 32768);
    PastKeyValues? first = null;
    foreach (int l in lengths)
    {
        if (l < 256) { Fill(batch.Join(), 0, l); continue; }
        if (first is null) { Fill(first = batch.Join(), 0, l); continue; }
        Fill(batch.Fork(first, 256), 256, l);
    }
    Report($"paged, blocks of 16, a 256-token prompt shared by {lengths.Count(l => l >= 256)} sequences", batch.Pool.BytesInUse, Anon() - before);
    Console.WriteLine($"|   (blocks in use {batch.Pool.BlocksInUse}, shared {batch.Pool.BlocksShared}; tokens held counting the prompt once per sequence: {batch.TokensHeld}) | | | | |");
    GC.KeepAlive(batch);
}
