#:project ../../src/Qwen2.Native/Qwen2.Native.csproj
// Measures load time, resident memory before/after load (weights are mapped, not copied), prefill and decode speed.
// usage: dotnet run -c Release tools/measure/load_and_decode.cs CHECKPOINT_DIR
using System.Diagnostics;
using Qwen2.Native;
static long Rss() { foreach (var l in File.ReadLines("/proc/self/status")) if (l.StartsWith("VmRSS:")) return long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) / 1024; return -1; }
Console.WriteLine($"RSS before load: {Rss()} MiB");
var sw = Stopwatch.StartNew();
using var m = Qwen2Model.Load(args[0]);
Console.WriteLine($"load: {sw.ElapsedMilliseconds} ms, weights {m.WeightBytes / 1048576} MiB, RSS after load: {Rss()} MiB");
var cache = m.CreateCache(256);
var lg = new float[m.Config.VocabSize];
sw.Restart();
m.ForwardInto(Enumerable.Range(1, 64).ToArray(), cache, lg);
Console.WriteLine($"prefill 64: {sw.ElapsedMilliseconds} ms ({64000.0/sw.ElapsedMilliseconds:F1} tok/s), RSS {Rss()} MiB");
sw.Restart();
for (int i = 0; i < 16; i++) m.ForwardInto(new[] { 5 + i }, cache, lg);
double s = sw.Elapsed.TotalSeconds;
Console.WriteLine($"decode 16: {16 / s:F2} tok/s ({m.WeightBytes * 16 / s / 1e9:F1} GB/s of weights), RSS {Rss()} MiB");
