namespace Qwen2.Native.Tests;

/// <summary>
/// A synthesized tiny Qwen3-Embedding checkpoint (random weights) laid out as the real one ships: base-model tensor
/// names, no lm_head, sentence-transformers' files, and Qwen3's tokenizer with the post-processor that appends
/// &lt;|endoftext|&gt;. Shared by the tests of a class.
/// </summary>
public sealed class TinyQwen3EmbeddingModel() : TinyChatModel(SyntheticShape.TinyQwen3Embedding, "qwen3", seed: 17,
    prepare: dir => SyntheticCheckpoint.AddEmbeddingTemplate(Path.Combine(dir, "tokenizer.json")));
