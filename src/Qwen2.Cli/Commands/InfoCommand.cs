namespace Qwen2.Cli;

/// <summary><c>qwen2 info</c>: the config and a summary of the tensors.</summary>
internal static class InfoCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var model = CommonOptions.Model();
        var cmd = new Command("info", "Print the config and a summary of the tensors.") { model };
        cmd.SetAction(p => Guard.Run(stderr, () =>
        {
            using var m = Qwen2Model.FromPretrained(p.GetValue(model), new ModelOptions { Threads = 1 });
            Write(m, stdout);
            return 0;
        }));
        return cmd;
    }

    /// <summary>The text of <c>qwen2 info</c>.</summary>
    public static void Write(Qwen2Model m, TextWriter w)
    {
        var c = m.Config;
        var ic = CultureInfo.InvariantCulture;
        w.WriteLine($"checkpoint      {m.Directory}");
        w.WriteLine($"model_type      {c.ModelType} ({c.TorchDtype ?? "dtype not declared"})");
        w.WriteLine(string.Create(ic, $"layers          {c.NumHiddenLayers}"));
        w.WriteLine(string.Create(ic, $"hidden          {c.HiddenSize}, intermediate {c.IntermediateSize}"));
        w.WriteLine(string.Create(ic, $"heads           {c.NumAttentionHeads} query / {c.NumKeyValueHeads} kv, head_dim {c.HeadDim}"));
        w.WriteLine(string.Create(ic, $"vocab           {c.VocabSize}, tied lm_head: {c.TieWordEmbeddings}"));
        w.WriteLine(string.Create(ic, $"rope_theta      {c.RopeTheta}, rms_norm_eps {c.RmsNormEps}, max positions {c.MaxPositionEmbeddings}"));
        w.WriteLine(c.UseSlidingWindow
            ? string.Create(ic, $"sliding window  {c.SlidingWindow} tokens on layers {string.Join(",", Enumerable.Range(0, c.NumHiddenLayers).Where(c.LayerUsesSlidingWindow))}")
            : "sliding window  off");
        w.WriteLine($"eos ids         {(c.EosTokenIds.Count == 0 ? "none" : string.Join(",", c.EosTokenIds))}");
        var tensors = m.Tensors.OrderBy(t => t.Tensor.Name, StringComparer.Ordinal).ToList();
        long parameters = tensors.Sum(t => t.Tensor.Shape.Aggregate(1L, (a, b) => a * b));
        w.WriteLine(string.Create(ic, $"tensors         {tensors.Count} in {tensors.Select(t => t.File).Distinct().Count()} file(s), {parameters:N0} parameters, {m.WeightBytes / 1048576.0:F1} MiB"));
        foreach (var g in tensors.GroupBy(t => t.Tensor.DType).OrderBy(g => g.Key, StringComparer.Ordinal))
            w.WriteLine(string.Create(ic, $"  {g.Key,-6}        {g.Count()} tensors"));
        static bool LaterLayer(string name) =>
            (name.StartsWith("model.layers.", StringComparison.Ordinal) && !name.StartsWith("model.layers.0.", StringComparison.Ordinal))
            || (name.StartsWith("blk.", StringComparison.Ordinal) && !name.StartsWith("blk.0.", StringComparison.Ordinal));
        foreach (var (t, file) in tensors.Where(t => !LaterLayer(t.Tensor.Name)))
            w.WriteLine($"  {t.Name,-52} {t.DType,-5} {t.ShapeText,-14} {file}");
        if (c.NumHiddenLayers > 1) w.WriteLine(string.Create(ic, $"  (layers 1..{c.NumHiddenLayers - 1} have the same tensors as layer 0)"));
    }
}
