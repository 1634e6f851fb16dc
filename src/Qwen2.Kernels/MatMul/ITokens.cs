namespace Qwen2.Kernels;

/// <summary>A token count known when the JIT specializes a kernel, so unused accumulators are compiled away.</summary>
internal interface ITokens
{
    static abstract int Count { get; }
}

internal readonly struct Tokens2 : ITokens { public static int Count => 2; }
internal readonly struct Tokens3 : ITokens { public static int Count => 3; }
internal readonly struct Tokens4 : ITokens { public static int Count => 4; }
