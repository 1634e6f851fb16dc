using Qwen2.Kernels;
using Qwen2.Native.Generation;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests;

/// <summary>
/// A checkpoint whose greedy decoding follows a script: after token <c>a</c> comes <c>next[a]</c>, whatever came
/// before. Every matrix is zero but three, so the residual stream at a position is its token's embedding: each scripted
/// token's embedding is a one-hot vector of its own slot, and the (untied) lm_head row of its successor reads that slot.
/// Optionally a second script takes over once a marker token has appeared anywhere in the context: one attention head
/// (a constant query from q_proj's bias, a key only on the marker, in the RoPE pair that turns slowest) copies a flag
/// from the marker into one dimension, which tips the first token after <c>after</c> from the first script's to the
/// second's. With the real vocabulary and tokenizer, tests make a model write a given text (reasoning tags, tool calls,
/// then an answer once a tool's result is in the context), which random weights never do.
/// </summary>
public sealed class ScriptedModel : IDisposable
{
    private const int Hidden = 64, Flag = Hidden - 1, ImEnd = 151645;
    private readonly TempDir _dir = Fixtures.TempDir();

    /// <summary>A model that, after the prompt's last token <paramref name="after"/>, writes <paramref name="script"/> then <c>&lt;|im_end|&gt;</c>.</summary>
    /// <param name="after">The token generation starts from (a chat prompt ends with "\n", 198).</param>
    /// <param name="script">The ids to write, each once (a token's successor is a function of the token alone).</param>
    /// <param name="family">The tokenizer and chat template (fixtures/tokenizer/FAMILY).</param>
    /// <param name="marker">With <paramref name="afterMarker"/>: once this token is in the context, <paramref name="afterMarker"/> is written instead.</param>
    /// <param name="afterMarker">The second script; its ids and the first's must differ.</param>
    public ScriptedModel(int after, IReadOnlyList<int> script, string family = "qwen3", int? marker = null, IReadOnlyList<int>? afterMarker = null)
    {
        var first = Chain(after, script);
        var second = afterMarker is null ? null : Chain(after, afterMarker);
        var keys = first.Take(first.Count - 1).Concat(second?.Skip(1).Take(second.Count - 2) ?? []).ToList();
        if (marker is { } m) keys.Add(m);
        if (keys.Distinct().Count() != keys.Count)
            throw new ArgumentException("a token appears twice in the scripts (or is the marker); its successor must be a function of the token", nameof(script));
        if (keys.Count > Flag) throw new ArgumentException($"the scripts hold at most {Flag - 1} tokens", nameof(script));
        var slot = keys.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i);

        var shape = SyntheticShape.Tiny with { Name = "scripted", HiddenSize = Hidden, NumAttentionHeads = 2, NumKeyValueHeads = 1, IntermediateSize = 32, TieWordEmbeddings = false };
        int headDim = shape.HeadDim, last = headDim - 1; // RoPE pairs dimension i with i + headDim/2; the last pair turns slowest
        float scale = MathF.Sqrt(Hidden); // RMSNorm makes a one-hot row sqrt(hidden) long
        // The synthetic writer gives the config files (and random weights, replaced below).
        SyntheticCheckpoint.Write(_dir.Path, shape, WeightType.F32);
        var specs = shape.TensorShapes().Select(t => new TensorSpec(t.Name, WeightType.F32, t.Shape)).ToArray();
        using (var w = new SafeTensorsWriter(Path.Combine(_dir.Path, CheckpointFiles.SingleFile), specs))
        {
            foreach (var spec in specs)
            {
                var v = new float[spec.ElementCount];
                void Successors(List<int> chain, int from)
                {
                    for (int i = from; i < chain.Count - 1; i++) v[(long)chain[i + 1] * Hidden + slot[chain[i]]] = 1f;
                }
                switch (spec.Name)
                {
                    case var n when n.EndsWith("norm.weight", StringComparison.Ordinal): Array.Fill(v, 1f); break;
                    case "model.embed_tokens.weight":
                        foreach (var (token, s) in slot) v[(long)token * Hidden + s] = 1f;
                        break;
                    case "lm_head.weight":
                        Successors(first, 0);
                        if (second is not null)
                        {
                            Successors(second, 1);
                            // After `after`: the first script's token scores 1; the second's 0.5 + 2 × flag, which beats it only
                            // with the flag (0.375) set, and stays under every other successor's 1 elsewhere (0.75).
                            v[(long)second[1] * Hidden + slot[after]] = 0.5f;
                            v[(long)second[1] * Hidden + Flag] = 2f;
                        }
                        break;
                    case "model.layers.0.self_attn.q_proj.bias" when marker is not null: v[last] = 13f; break;               // head 0: a constant query
                    case "model.layers.0.self_attn.k_proj.weight" when marker is not null: v[(long)last * Hidden + slot[marker.Value]] = 13f / scale; break;
                    case "model.layers.0.self_attn.v_proj.weight" when marker is not null: v[slot[marker.Value]] = 0.375f / scale; break;
                    case "model.layers.0.self_attn.o_proj.weight" when marker is not null: v[(long)Flag * (2 * headDim)] = 1f; break; // head 0, dim 0 → the flag
                }
                w.Write(v);
            }
            w.Complete();
        }
        TinyChatModel.CopyTokenizer(_dir.Path, family);
        Model = Qwen2Model.Load(_dir.Path, new ModelOptions { Threads = 1 });
        Tokenizer = Qwen2Tokenizer.Load(_dir.Path);
        Pipeline = new Qwen2Pipeline(Model, Tokenizer);
    }

    private static List<int> Chain(int after, IReadOnlyList<int> script) => [after, .. script, ImEnd];

    /// <summary>
    /// A Qwen3 model that answers every chat prompt with <c>&lt;think&gt;Rayleigh scattering&lt;/think&gt;\n\nBlue</c>,
    /// its opening tag split over three tokens ("&lt;", "th", "ink>").
    /// </summary>
    public static ScriptedModel Reasoning()
    {
        var tokenizer = Qwen2Tokenizer.Load(System.IO.Path.Combine(Fixtures.Root, "tokenizer", "qwen3"));
        return new ScriptedModel(198, Tokens(tokenizer, "<th", "ink>", "Rayleigh", " scattering", "</think>", "\n\n", "Blue"));
    }

    /// <summary>The call <see cref="ToolCaller"/> makes, as its text.</summary>
    public const string WeatherCall = "<tool_call>{\"name\": \"get_weather\",\"arguments\":{\"city\":\"Paris\"}}</tool_call>";

    /// <summary>What <see cref="ToolCaller"/> answers once a tool result is in the conversation.</summary>
    public const string WeatherAnswer = "It is sunny in Paris.";

    /// <summary>
    /// A Qwen3 model that calls <c>get_weather</c> with <c>{"city": "Paris"}</c> (<see cref="WeatherCall"/>) until a
    /// <c>&lt;tool_response&gt;</c> is in the context, then answers <see cref="WeatherAnswer"/>.
    /// </summary>
    public static ScriptedModel ToolCaller()
    {
        var tokenizer = Qwen2Tokenizer.Load(System.IO.Path.Combine(Fixtures.Root, "tokenizer", "qwen3"));
        return new ScriptedModel(198, tokenizer.Encode(WeatherCall), marker: tokenizer.TokenToId("<tool_response>")!.Value, afterMarker: tokenizer.Encode(WeatherAnswer));
    }

    /// <summary>The checkpoint directory.</summary>
    public string Directory => _dir.Path;

    /// <summary>The model.</summary>
    public Qwen2Model Model { get; }

    /// <summary>Its tokenizer (the family's).</summary>
    public Qwen2Tokenizer Tokenizer { get; }

    /// <summary>Model and tokenizer.</summary>
    public Qwen2Pipeline Pipeline { get; }

    /// <summary>Ids whose decoded texts are <paramref name="pieces"/>, one token each where the piece is one token, else its tokens.</summary>
    public static int[] Tokens(Qwen2Tokenizer tokenizer, params string[] pieces) => pieces.SelectMany(p => tokenizer.Encode(p)).ToArray();

    /// <inheritdoc />
    public void Dispose()
    {
        Model.Dispose();
        _dir.Dispose();
    }
}
