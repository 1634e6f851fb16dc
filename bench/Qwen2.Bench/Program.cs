using BenchmarkDotNet.Running;

// Run all: dotnet run -c Release --project bench/Qwen2.Bench -- --filter '*'
// The model is QWEN2_MODEL when set, else the repository's tiny test checkpoint.
BenchmarkSwitcher.FromAssembly(typeof(Qwen2.Bench.CacheVsNoCache).Assembly).Run(args);
