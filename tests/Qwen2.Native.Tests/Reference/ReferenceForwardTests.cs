using Qwen2.Reference;

namespace Qwen2.Native.Tests.Reference;

/// <summary>The float64 reference holds to the PyTorch goldens: the premise of every comparison made against it.</summary>
public class ReferenceForwardTests
{
    public static TheoryData<string> Models => ["tiny-f32", "tiny-bf16", "headdim-bf16", "sharded-bf16", "sliding-f32", "untied-f16-mha"];

    [Theory]
    [MemberData(nameof(Models))]
    public void Reference_matches_the_golden_logits_and_greedy_tokens(string name)
    {
        var golden = Fixtures.Golden(name);
        var model = ReferenceModel.FromCheckpoint(Fixtures.Model(name));
        var logits = ReferenceForward.Logits(model, golden.Tokens);
        Assert.Equal(golden.Logits.Length, logits.Length);
        double worst = 0;
        for (int p = 0; p < logits.Length; p++)
        {
            Assert.Equal(golden.Logits[p].Length, logits[p].Length);
            for (int j = 0; j < logits[p].Length; j++) worst = Math.Max(worst, Math.Abs(logits[p][j] - golden.Logits[p][j]));
        }
        Assert.True(worst <= 1e-4, $"{name}: the reference is {worst:G3} from the golden logits (limit 1e-4)");

        // Greedy: the golden tokens, each the argmax of the reference's logits over the sequence before it.
        var sequence = golden.Tokens.Concat(golden.Greedy).ToArray();
        var all = ReferenceForward.Logits(model, sequence);
        for (int s = 0; s < golden.Greedy.Length; s++)
            Assert.Equal(golden.Greedy[s], ReferenceForward.ArgMax(all[golden.Tokens.Length - 1 + s]));
    }
}
