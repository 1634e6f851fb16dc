using Qwen2.Kernels;
using Qwen2.Native.Generation;
using Qwen2.Native.Text;

namespace Qwen2.Native.Tests;

/// <summary>
/// A checkpoint whose greedy decoding follows a script: after token <c>a</c> comes <c>next[a]</c>, whatever came
/// before. Every layer's matrices are zero, so the residual stream at a position is its token's embedding; each scripted
/// token's embedding is a one-hot vector of its own slot, and the (untied) lm_head row of its successor reads that slot.
/// With the real vocabulary and tokenizer, tests can make a model write a given text (reasoning tags, tool calls)
/// token by token, however the tokens split it, which random weights never do.
/// </summary>
public sealed class ScriptedModel : IDisposable
{
    private const int Hidden = 32;
    private readonly TempDir _dir = Fixtures.TempDir();

    /// <summary>A model that, after the prompt's last token <paramref name="after"/>, writes <paramref name="script"/> then <c>&lt;|im_end|&gt;</c>.</summary>
    /// <param name="after">The token generation starts from (a chat prompt ends with "\n", 198).</param>
    /// <param name="script">The ids to write, each once (a token's successor is a function of the token alone).</param>
    /// <param name="family">The tokenizer and chat template (fixtures/tokenizer/FAMILY).</param>
    public ScriptedModel(int after, IReadOnlyList<int> script, string family = "qwen3")
    {
        const int imEnd = 151645;
        var chain = new List<int> { after };
        chain.AddRange(script);
        chain.Add(imEnd);
        if (chain.Count - 1 > Hidden) throw new ArgumentException($"a script holds at most {Hidden - 1} tokens", nameof(script));
        if (chain.Take(chain.Count - 1).Distinct().Count() != chain.Count - 1)
            throw new ArgumentException("a token appears twice in the script; its successor must be a function of the token", nameof(script));

        var shape = SyntheticShape.Tiny with { Name = "scripted", HiddenSize = Hidden, NumAttentionHeads = 2, NumKeyValueHeads = 1, IntermediateSize = 32, TieWordEmbeddings = false };
        // The synthetic writer gives the config files (and random weights, replaced below).
        SyntheticCheckpoint.Write(_dir.Path, shape, WeightType.F32);
        var specs = shape.TensorShapes().Select(t => new TensorSpec(t.Name, WeightType.F32, t.Shape)).ToArray();
        using (var w = new SafeTensorsWriter(Path.Combine(_dir.Path, CheckpointFiles.SingleFile), specs))
        {
            foreach (var spec in specs)
            {
                var values = new float[spec.ElementCount];
                if (spec.Name.EndsWith("norm.weight", StringComparison.Ordinal)) Array.Fill(values, 1f);
                else if (spec.Name == "model.embed_tokens.weight")
                    for (int slot = 0; slot < chain.Count - 1; slot++) values[(long)chain[slot] * Hidden + slot] = 1f;
                else if (spec.Name == "lm_head.weight")
                    for (int slot = 0; slot < chain.Count - 1; slot++) values[(long)chain[slot + 1] * Hidden + slot] = 1f;
                w.Write(values);
            }
            w.Complete();
        }
        TinyChatModel.CopyTokenizer(_dir.Path, family);
        Model = Qwen2Model.Load(_dir.Path, new ModelOptions { Threads = 1 });
        Tokenizer = Qwen2Tokenizer.Load(_dir.Path);
        Pipeline = new Qwen2Pipeline(Model, Tokenizer);
    }

    /// <summary>
    /// A Qwen3 model that answers every chat prompt with <c>&lt;think&gt;Rayleigh scattering&lt;/think&gt;\n\nBlue</c>,
    /// its opening tag split over three tokens ("&lt;", "th", "ink>").
    /// </summary>
    public static ScriptedModel Reasoning()
    {
        var tokenizer = Qwen2Tokenizer.Load(System.IO.Path.Combine(Fixtures.Root, "tokenizer", "qwen3"));
        return new ScriptedModel(198, Tokens(tokenizer, "<th", "ink>", "Rayleigh", " scattering", "</think>", "\n\n", "Blue"));
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
