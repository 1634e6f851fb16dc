using System.Text;

namespace Qwen2.Cli;

/// <summary>
/// <c>qwen2 cpu</c>: the kernel path and the instruction sets this process sees. A native AOT binary fixes some of
/// these at compile time (its instruction-set baseline), so this is how to check that it still finds AVX-512.
/// </summary>
internal static class CpuCommand
{
    public static Command Create(TextWriter stdout)
    {
        var cmd = new Command("cpu", "Print the kernel path this process takes, the instruction sets it sees, and whether it runs as native AOT.");
        cmd.SetAction(_ =>
        {
            stdout.WriteLine($"kernels         {Qwen2.Kernels.IsaSupport.Best}");
            stdout.WriteLine($"Vector512       {System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}");
            stdout.WriteLine($"Vector256       {System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated}");
            stdout.WriteLine($"Avx512F         {System.Runtime.Intrinsics.X86.Avx512F.IsSupported}");
            stdout.WriteLine($"Avx512BW        {System.Runtime.Intrinsics.X86.Avx512BW.IsSupported}");
            stdout.WriteLine($"Avx2            {System.Runtime.Intrinsics.X86.Avx2.IsSupported}");
            stdout.WriteLine($"Fma             {System.Runtime.Intrinsics.X86.Fma.IsSupported}");
            // A native AOT process compiles no method at run time; RuntimeFeature.IsDynamicCodeSupported cannot tell,
            // since PublishAot switches it off for JIT runs of this project too.
            stdout.WriteLine($"runtime         {(System.Runtime.JitInfo.GetCompiledMethodCount() > 0 ? "JIT" : "native AOT")}, {System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription}");
            // The tokenizer needs NFC; invariant globalization would make Normalize a no-op for non-ASCII text.
            stdout.WriteLine($"NFC             {("e\u0301".Normalize(NormalizationForm.FormC) == "\u00e9" ? "works" : "unavailable (invariant globalization?)")}");
            stdout.WriteLine($"processors      {Environment.ProcessorCount}");
            return 0;
        });
        return cmd;
    }
}
