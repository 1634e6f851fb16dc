namespace Qwen2.Native.Tests;

/// <summary>A synthesized tiny Qwen3 checkpoint (random weights) with Qwen3's tokenizer and chat template, shared by the tests of a class.</summary>
public sealed class TinyQwen3Model() : TinyChatModel(SyntheticShape.TinyQwen3, "qwen3", seed: 13);
