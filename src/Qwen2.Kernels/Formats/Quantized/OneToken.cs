namespace Qwen2.Kernels;

/// <summary>One token: lets a K-quant's <see cref="IQuantFormat.Dot"/> run its specialized <see cref="IQuantFormat.DotTokens"/> kernel.</summary>
internal readonly struct OneToken : ITokens { public static int Count => 1; }
