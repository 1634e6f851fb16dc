using Qwen2.Native.Tests.Tokenizer;

namespace Qwen2.Native.Tests.Loading.Gguf;

/// <summary>
/// A complete, very small qwen2 GGUF model built field by field: hidden 32, 2 query heads and 1 kv head of 16, MLP 64,
/// one layer, a 262-token byte-level vocabulary with merges and an added &lt;|endoftext|&gt;, seeded random F32 weights.
/// </summary>
public static class TinyGgufModel
{
    public const int Hidden = 32, Heads = 2, KvHeads = 1, HeadDim = 16, Inter = 64, Layers = 1;

    public static string[] TokenList()
    {
        var chars = TinyTokenizerJson.ByteChars();
        return [.. chars, "Ġt", "he", "Ġthe", "or", "wor", "word", "<|endoftext|>"];
    }

    public static int Vocab => TokenList().Length;

    /// <summary>The metadata and tensors; <paramref name="edit"/> may change anything before the tensors are added.</summary>
    public static RawGguf Build(int seed = 1, bool tied = true, Action<RawGguf>? editMetadata = null)
    {
        var tokens = TokenList();
        var g = new RawGguf()
            .String("general.architecture", "qwen2")
            .UInt32("general.alignment", 32)
            .UInt32("qwen2.context_length", 64)
            .UInt32("qwen2.embedding_length", Hidden)
            .UInt32("qwen2.block_count", Layers)
            .UInt32("qwen2.feed_forward_length", Inter)
            .UInt32("qwen2.attention.head_count", Heads)
            .UInt32("qwen2.attention.head_count_kv", KvHeads)
            .Float32("qwen2.rope.freq_base", 1e6f)
            .Float32("qwen2.attention.layer_norm_rms_epsilon", 1e-6f)
            .String("tokenizer.ggml.model", "gpt2")
            .String("tokenizer.ggml.pre", "qwen2")
            .Strings("tokenizer.ggml.tokens", tokens)
            .Ints("tokenizer.ggml.token_type", tokens.Select((t, i) => i == tokens.Length - 1 ? 3 : 1))
            .Strings("tokenizer.ggml.merges", ["Ġ t", "h e", "Ġt he", "o r", "w or", "wor d"])
            .UInt32("tokenizer.ggml.eos_token_id", (uint)(tokens.Length - 1))
            .Bool("tokenizer.ggml.add_bos_token", false)
            .String("tokenizer.chat_template", "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}");
        editMetadata?.Invoke(g);
        var rng = new Random(seed);
        float[] Values(long n, float scale) => Enumerable.Range(0, (int)n).Select(_ => (float)(rng.NextDouble() * 2 - 1) * scale).ToArray();
        void Matrix(string name, long rows, long cols) => g.Tensor(name, [cols, rows], values: Values(rows * cols, 0.3f));
        void Vector(string name, long n, float center) => g.Tensor(name, [n], values: Values(n, 0.1f).Select(v => v + center).ToArray());
        int q = Heads * HeadDim, kv = KvHeads * HeadDim;
        Matrix("token_embd.weight", tokens.Length, Hidden);
        for (int i = 0; i < Layers; i++)
        {
            string b = $"blk.{i}.";
            Vector(b + "attn_norm.weight", Hidden, 1);
            Matrix(b + "attn_q.weight", q, Hidden); Vector(b + "attn_q.bias", q, 0);
            Matrix(b + "attn_k.weight", kv, Hidden); Vector(b + "attn_k.bias", kv, 0);
            Matrix(b + "attn_v.weight", kv, Hidden); Vector(b + "attn_v.bias", kv, 0);
            Matrix(b + "attn_output.weight", Hidden, q);
            Vector(b + "ffn_norm.weight", Hidden, 1);
            Matrix(b + "ffn_gate.weight", Inter, Hidden); Matrix(b + "ffn_up.weight", Inter, Hidden); Matrix(b + "ffn_down.weight", Hidden, Inter);
        }
        Vector("output_norm.weight", Hidden, 1);
        if (!tied) Matrix("output.weight", tokens.Length, Hidden);
        return g;
    }
}
