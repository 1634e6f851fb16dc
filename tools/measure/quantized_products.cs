#:project ../../src/Qwen2.Kernels/Qwen2.Kernels.csproj
#:property AllowUnsafeBlocks=true
// Times MatMul.Multiply over random quantized blocks per "TYPE RxC TOKENS" case: GFLOP/s and GB/s of weights, 1 and 2
// threads, best of 7 (a quick A/B between two checkouts; bench/Qwen2.Bench QuantizedKernels is the BenchmarkDotNet suite).
// usage: dotnet run -c Release tools/measure/quantized_products.cs "Q5_0 4864x896 64" "Q4_K 896x4864 512" ...
using System.Diagnostics;
using System.Runtime.InteropServices;
using Qwen2.Kernels;
unsafe {
string[] cases = args.Length > 0 ? args : ["Q5_0 4864x896 64", "Q5_0 896x4864 64", "Q8_0 4864x896 64", "Q4_K 896x4864 64", "Q6_K 896x4864 64"];
using var pool = new WorkerPool(2);
foreach (var c in cases)
{
    var p = c.Split(' ');
    var type = Enum.Parse<WeightType>(p[0]);
    var rc = p[1].Split('x'); int rows = int.Parse(rc[0]), cols = int.Parse(rc[1]); int tokens = int.Parse(p[2]);
    long bytes = WeightTypes.ByteCount(type, (long)rows * cols);
    byte* wp = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
    var rng = new Random(7);
    rng.NextBytes(new Span<byte>(wp, (int)bytes));
    int bb = WeightTypes.BlockBytes(type);
    int[] sc = type switch { WeightType.Q4_1 or WeightType.Q5_1 or WeightType.Q4_K or WeightType.Q5_K => [0, 2], WeightType.Q6_K => [208], _ => [0] };
    for (long b = 0; b < bytes / bb; b++) foreach (int at in sc) *(Half*)(wp + b * bb + at) = (Half)(0.001f + 0.01f * rng.NextSingle());
    var w = new WeightMatrix(wp, rows, cols, type);
    var x = Enumerable.Range(0, tokens * cols).Select(_ => 2 * rng.NextSingle() - 1).ToArray();
    var y = new float[tokens * rows];
    foreach (var pl in new WorkerPool?[] { null, pool })
    {
        for (int i = 0; i < 3; i++) MatMul.Multiply(w, x, y, tokens, pl, IsaSupport.Best);
        double best = double.MaxValue;
        for (int rep = 0; rep < 7; rep++)
        {
            var sw = Stopwatch.StartNew();
            int n = Math.Max(1, 20 * 64 / tokens);
            for (int i = 0; i < n; i++) MatMul.Multiply(w, x, y, tokens, pl, IsaSupport.Best);
            best = Math.Min(best, sw.Elapsed.TotalSeconds / n);
        }
        Console.WriteLine($"{c,-22} threads {(pl is null ? 1 : 2)}: {best * 1e3,8:F3} ms  {2.0 * rows * cols * tokens / best / 1e9,7:F1} GFLOP/s  {bytes / best / 1e9,6:F2} GB/s");
    }
    NativeMemory.AlignedFree(wp);
}
}
