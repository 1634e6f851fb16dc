using System.Text;
using System.Text.Json.Nodes;
using CsCheck;
using Xunit.Abstractions;

namespace Qwen2.Native.Tests.Fuzz;

/// <summary>
/// Malformed config.json and model.safetensors.index.json: through <see cref="Qwen2Config.Parse"/>,
/// <see cref="CheckpointFiles"/> and <see cref="Qwen2Model.Load"/>. Known-bad values must be refused with a
/// <see cref="CheckpointException"/> naming the field; random edits are refused the same way or load a model that runs.
/// </summary>
public sealed class ConfigFuzzTests(ITestOutputHelper output)
{
    private static readonly string BaseConfig = File.ReadAllText(Path.Combine(Fixtures.Model("tiny-f32"), "config.json"));
    private const string Source = "fuzz/config.json";

    /// <summary>One invalid change: the fields it sets (null value: removed) and the fields whose values it relies on.</summary>
    private sealed record ConfigDefect(string Name, (string Field, string? Json)[] Set, string[] DependsOn)
    {
        public IEnumerable<string> Fields => Set.Select(s => s.Field).Concat(DependsOn);
    }

    private static readonly string[] SizeFields =
        ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size", "max_position_embeddings", "head_dim"];

    private static readonly string[] BadSizes =
        ["0", "-1", "-64", "-2147483648", "-2147483649", "2147483648", "1e20", "1e400", "2.5", "\"64\"", "true", "[]", "{}", "[64]", "-0.5", "9223372036854775808"];

    private static readonly ConfigDefect[] Defects = BuildDefects();

    private static ConfigDefect[] BuildDefects()
    {
        var list = new List<ConfigDefect>();
        foreach (var f in SizeFields)
            foreach (var v in BadSizes)
                list.Add(new($"{f}={v}", [(f, v)], []));
        ConfigDefect D(string name, params (string, string?)[] set) => new(name, set, []);
        ConfigDefect Dep(string name, string[] deps, params (string, string?)[] set) => new(name, set, deps);
        string[] shape = ["hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim"];
        list.AddRange(
        [
            Dep("hidden not a multiple of heads", shape, ("hidden_size", "66"), ("head_dim", null), ("num_attention_heads", "4"), ("num_key_value_heads", "2")),
            Dep("hidden 70, heads 4", shape, ("hidden_size", "70"), ("head_dim", null), ("num_attention_heads", "4"), ("num_key_value_heads", "4")),
            Dep("kv heads do not divide heads", shape, ("num_attention_heads", "4"), ("num_key_value_heads", "3")),
            Dep("kv heads above heads", shape, ("num_attention_heads", "4"), ("num_key_value_heads", "8")),
            Dep("6 heads, 4 kv", shape, ("hidden_size", "96"), ("num_attention_heads", "6"), ("num_key_value_heads", "4")),
            Dep("odd head_dim", shape, ("head_dim", "15")),
            Dep("odd derived head_dim", shape, ("hidden_size", "68"), ("head_dim", null), ("num_attention_heads", "4"), ("num_key_value_heads", "2")),
            Dep("heads x head_dim wraps", shape, ("num_attention_heads", "67108865"), ("num_key_value_heads", "1"), ("head_dim", "64")),
            Dep("heads x head_dim over int", shape, ("num_attention_heads", "65536"), ("num_key_value_heads", "1"), ("head_dim", "65536")),
            D("eps 0", ("rms_norm_eps", "0")), D("eps negative", ("rms_norm_eps", "-1e-6")), D("eps string", ("rms_norm_eps", "\"1e-6\"")),
            D("eps array", ("rms_norm_eps", "[1e-6]")),
            D("theta 0", ("rope_theta", "0")), D("theta negative", ("rope_theta", "-10000")), D("theta inf", ("rope_theta", "1e400")),
            D("theta string", ("rope_theta", "\"1e6\"")),
            D("llama", ("model_type", "\"llama\"")), D("model_type number", ("model_type", "2")), D("model_type missing", ("model_type", null)),
            D("model_type null", ("model_type", "null")), D("Qwen2", ("model_type", "\"Qwen2\"")), D("model_type lone surrogate", ("model_type", "\"qwen2\\ud800\"")),
            D("gelu", ("hidden_act", "\"gelu\"")), D("act number", ("hidden_act", "5")), D("act lone surrogate", ("hidden_act", "\"\\udc00\"")),
            D("tie string", ("tie_word_embeddings", "\"true\"")), D("tie number", ("tie_word_embeddings", "1")),
            Dep("layer_types short", ["num_hidden_layers"], ("layer_types", "[\"full_attention\"]")),
            Dep("layer_types long", ["num_hidden_layers"], ("layer_types", "[\"full_attention\", \"full_attention\", \"full_attention\"]")),
            Dep("layer_types empty", ["num_hidden_layers"], ("layer_types", "[]")),
            Dep("layer_types unknown", ["num_hidden_layers"], ("layer_types", "[\"full_attention\", \"linear_attention\"]")),
            D("layer_types string", ("layer_types", "\"full_attention\"")), D("layer_types numbers", ("layer_types", "[1, 2]")),
            D("layer_types lone surrogate", ("layer_types", "[\"full_attention\", \"\\ud800\"]")),
            D("rope_scaling yarn", ("rope_scaling", "{\"type\": \"yarn\", \"factor\": 4.0}")),
            D("rope_scaling linear", ("rope_scaling", "{\"rope_type\": \"linear\", \"factor\": 2.0}")),
            D("rope_scaling type number", ("rope_scaling", "{\"rope_type\": 3}")),
            D("rope_parameters dynamic", ("rope_parameters", "{\"rope_type\": \"dynamic\"}")),
            D("rope_parameters theta string", ("rope_parameters", "{\"rope_theta\": \"1e6\"}")),
            D("rope_parameters theta 0", ("rope_parameters", "{\"rope_theta\": 0}")),
            D("eos string", ("eos_token_id", "\"511\"")), D("eos mixed list", ("eos_token_id", "[511, \"x\"]")), D("eos object", ("eos_token_id", "{}")),
            D("eos float", ("eos_token_id", "1.5")), D("eos list of floats", ("eos_token_id", "[1.5]")), D("eos huge", ("eos_token_id", "[4294967296]")),
            D("bos list", ("bos_token_id", "[510]")), D("bos string", ("bos_token_id", "\"x\"")),
            Dep("sliding window 0", ["use_sliding_window"], ("use_sliding_window", "true"), ("sliding_window", "0")),
            Dep("sliding window negative", ["use_sliding_window"], ("use_sliding_window", "true"), ("sliding_window", "-4096")),
            D("use_sliding_window string", ("use_sliding_window", "\"yes\"")),
            D("torch_dtype number", ("torch_dtype", "5")), D("max_window_layers string", ("max_window_layers", "\"28\"")),
            D("max_window_layers float", ("max_window_layers", "2.5")),
        ]);
        return list.ToArray();
    }

    /// <summary>The text of the base config with <paramref name="defects"/> applied (skipping any that touch a field already changed).</summary>
    private static (string Text, List<string> Applied) WithDefects(IEnumerable<ConfigDefect> defects)
    {
        var o = JsonNode.Parse(BaseConfig)!.AsObject();
        var touched = new HashSet<string>();
        var applied = new List<string>();
        var placeholders = new Dictionary<string, string>();
        foreach (var d in defects)
        {
            if (d.Fields.Any(touched.Contains)) continue;
            foreach (var (field, json) in d.Set)
            {
                if (json is null) o.Remove(field);
                else
                {
                    // JsonNode cannot hold every text (1e400, lone surrogates): a placeholder is replaced in the output
                    string key = $"@@{placeholders.Count}@@";
                    placeholders[key] = json;
                    o[field] = key;
                }
            }
            touched.UnionWith(d.Fields);
            applied.Add(d.Name);
        }
        string text = o.ToJsonString();
        foreach (var (key, json) in placeholders) text = text.Replace($"\"{key}\"", json, StringComparison.Ordinal);
        return (text, applied);
    }

    private static readonly Gen<ConfigDefect[]> DefectSets = Gen.OneOf(Defects).Array[1, 3];

    [Fact]
    public void InjectedDefects_AreRefusedNamingTheField()
    {
        var (rejected, _) = Fuzzer.Run(output, "config.json: injected defects", DefectSets, FuzzBudget.ConfigDefects, seed: 31337,
            defects =>
            {
                var (text, applied) = WithDefects(defects);
                Assert.NotEmpty(applied);
                var outcome = Fuzzer.MustReject(() => Qwen2Config.Parse(text, Source), Source);
                return outcome;
            }, d => string.Join("; ", d.Select(x => x.Name)) + " -> " + WithDefects(d).Text);
        Assert.Equal(FuzzBudget.ConfigDefects, rejected);
    }

    [Fact]
    public void EveryDefect_AloneIsRefused_AndTheBaseParses()
    {
        // The defect table itself: each entry alone is refused, and without it the config is valid.
        Assert.Equal(64, Qwen2Config.Parse(BaseConfig, Source).HiddenSize);
        foreach (var d in Defects)
        {
            var (text, _) = WithDefects([d]);
            var e = Assert.Throws<CheckpointException>(() => Qwen2Config.Parse(text, Source));
            Assert.Equal(Source, e.FilePath);
            Assert.NotNull(e.Field);
        }
        output.WriteLine($"config.json: {Defects.Length} single defects refused");
    }

    /// <summary>JSON values to put in place of a field's value, valid and invalid alike.</summary>
    private static readonly string[] AnyValues =
        ["0", "1", "-1", "2", "4", "16", "64", "512", "2147483647", "-2147483648", "1e20", "1e400", "1.5", "true", "false", "null",
         "\"\"", "\"qwen2\"", "\"silu\"", "\"x\\ud800\"", "[]", "[1]", "[\"full_attention\", \"sliding_attention\"]", "{}",
         "{\"rope_type\": \"default\", \"rope_theta\": 1e6}", "{\"type\": \"yarn\"}"];

    private static readonly string[] Keys =
        [.. SizeFields, "model_type", "hidden_act", "rope_theta", "rms_norm_eps", "tie_word_embeddings", "use_sliding_window", "sliding_window",
         "max_window_layers", "layer_types", "bos_token_id", "eos_token_id", "torch_dtype", "rope_scaling", "rope_parameters"];

    private static readonly Gen<(string Key, string Value)[]> ValueSwaps = Gen.Select(Gen.OneOf(Keys), Gen.OneOf(AnyValues), (k, v) => (k, v)).Array[1, 4];

    private static string Swap((string Key, string Value)[] swaps)
    {
        var o = JsonNode.Parse(BaseConfig)!.AsObject();
        for (int i = 0; i < swaps.Length; i++) o[swaps[i].Key] = $"@@{i}@@";
        string text = o.ToJsonString();
        for (int i = 0; i < swaps.Length; i++) text = text.Replace($"\"@@{i}@@\"", swaps[i].Value, StringComparison.Ordinal);
        return text;
    }

    private static readonly Gen<(bool Bytes, Fuzzer.ByteEdit[] Edits, (string Key, string Value)[] Swaps)> ConfigMutation =
        Gen.Select(Gen.Bool, Fuzzer.Edit.Array[1, 6], ValueSwaps, (b, e, s) => (b, e, s));

    private static string Mutate((bool Bytes, Fuzzer.ByteEdit[] Edits, (string Key, string Value)[] Swaps) m) =>
        m.Bytes ? Encoding.UTF8.GetString(Fuzzer.Apply(Encoding.UTF8.GetBytes(BaseConfig), m.Edits)) : Swap(m.Swaps);

    private static string Describe((bool Bytes, Fuzzer.ByteEdit[] Edits, (string Key, string Value)[] Swaps) m) =>
        (m.Bytes ? $"edits [{string.Join(", ", m.Edits)}]" : $"swaps [{string.Join(", ", m.Swaps.Select(s => s.Key + "=" + s.Value))}]") + " -> " + Mutate(m);

    [Fact]
    public void RandomEdits_AreRefusedOrParse()
    {
        var (rejected, accepted) = Fuzzer.Run(output, "config.json: random edits", ConfigMutation, FuzzBudget.ConfigMutations, seed: 8086,
            m => Fuzzer.Load(() =>
            {
                var c = Qwen2Config.Parse(Mutate(m), Source);
                // what parses is usable: the sizes the model allocates from are positive and consistent
                Assert.True(c.HiddenSize > 0 && c.NumAttentionHeads > 0 && c.NumKeyValueHeads > 0 && c.HeadDim > 0 && c.VocabSize > 0);
                Assert.Equal(0, c.NumAttentionHeads % c.NumKeyValueHeads);
                Assert.True((long)c.NumAttentionHeads * c.HeadDim <= int.MaxValue);
                for (int l = 0; l < c.NumHiddenLayers && l < 64; l++) _ = c.LayerUsesSlidingWindow(l);
            }, Source), Describe);
        Assert.True(rejected > 0 && accepted > 0, $"{rejected} refused, {accepted} parsed");
    }

    private static readonly string[] HugeSizes = ["2147483647", "2147483646", "1073741824", "65536", "1000000"];

    private static readonly Gen<(int Kind, string Field, string Value, (bool, Fuzzer.ByteEdit[], (string, string)[]) Mutation)> ModelConfig =
        Gen.Select(Gen.Int[0, 2], Gen.OneOf("hidden_size", "intermediate_size", "num_hidden_layers", "vocab_size", "num_attention_heads", "head_dim"),
            Gen.OneOf(HugeSizes), ConfigMutation, (k, f, v, m) => (k, f, v, m));

    [Fact]
    public void HugeAndEditedConfigs_ThroughModelLoad_AreRefusedOrRun()
    {
        // Huge sizes parse but cannot match the weights: the shape check must refuse them before anything is allocated.
        using var dir = Fixtures.TempDir();
        File.Copy(Path.Combine(Fixtures.Model("tiny-f32"), CheckpointFiles.SingleFile), dir.File(CheckpointFiles.SingleFile));
        string config = dir.File("config.json"), weights = dir.File(CheckpointFiles.SingleFile);
        Fuzzer.Run(output, "config.json: huge sizes and edits through Qwen2Model.Load", ModelConfig, FuzzBudget.ConfigThroughModelLoad, seed: 65,
            m =>
            {
                bool huge = m.Kind != 0;
                string text = huge ? Swap([(m.Field, m.Value)]) : Mutate(m.Mutation);
                File.WriteAllText(config, text);
                Action load = () =>
                {
                    using var model = Qwen2Model.Load(dir.Path, new ModelOptions { Threads = 1 });
                    var logits = model.Forward([1, 2, 3], logits: LogitsSelection.Last).Logits;
                    Assert.Equal(model.Config.VocabSize, logits.VocabSize);
                };
                return huge ? Fuzzer.MustReject(load, config, weights) : Fuzzer.Load(load, config, weights);
            }, m => m.Kind != 0 ? $"{m.Field}={m.Value}" : Describe(m.Mutation));
    }

    // ---------------------------------------------------------------- model.safetensors.index.json

    private static readonly string[] BadShardNames =
        ["../model-00001-of-00008.safetensors", "..\\model-00001-of-00008.safetensors", "/etc/passwd", "sub/model-00001-of-00008.safetensors",
         "", ".", "..", "model-00009-of-00008.safetensors", "missing.safetensors", "model.safetensors.index.json", "config.json",
         "./model-00001-of-00008.safetensors", "model-00001-of-00008.safetensors\u0000.txt", "C:\\x.safetensors"];

    private static readonly string[] BadWeightMaps = ["[]", "\"x\"", "null", "5", "[\"model-00001-of-00008.safetensors\"]"];
    private static readonly string[] BadShardValues = ["1", "null", "[]", "{}", "true", "\"model-0000\\ud800.safetensors\""];

    private sealed record IndexCase(int Kind, int Entry, string Text, Fuzzer.ByteEdit[] Edits);

    private static readonly Gen<IndexCase> IndexCases =
        Gen.Select(Gen.Int[0, 5], Gen.Int[0, 1000], Gen.OneOf([.. BadShardNames, .. BadWeightMaps, .. BadShardValues]), Fuzzer.Edit.Array[1, 5],
            (k, e, t, edits) => new IndexCase(k, e, t, edits));

    /// <summary>The index text for a case and whether the case is known to be malformed.</summary>
    private static (string Text, bool Malformed) IndexText(string baseText, IndexCase c)
    {
        var o = JsonNode.Parse(baseText)!.AsObject();
        var map = o["weight_map"]!.AsObject();
        var names = map.Select(p => p.Key).ToArray();
        string tensor = names[c.Entry % names.Length];
        string Quote(string s) => System.Text.Json.JsonSerializer.Serialize(s);
        switch (c.Kind)
        {
            case 0: // a bad shard name for one tensor
                map[tensor] = "@@";
                return (o.ToJsonString().Replace("\"@@\"", BadShardNames.Contains(c.Text) ? Quote(c.Text) : Quote(BadShardNames[c.Entry % BadShardNames.Length]), StringComparison.Ordinal), true);
            case 1: // weight_map of the wrong type
                o["weight_map"] = "@@";
                return (o.ToJsonString().Replace("\"@@\"", BadWeightMaps[c.Entry % BadWeightMaps.Length], StringComparison.Ordinal), true);
            case 2: // a shard value of the wrong type
                map[tensor] = "@@";
                return (o.ToJsonString().Replace("\"@@\"", BadShardValues[c.Entry % BadShardValues.Length], StringComparison.Ordinal), true);
            case 3: // an existing shard that does not hold the tensor, or a tensor no shard holds
                string other = map.Select(p => (string)p.Value!).Distinct().First(s => s != (string)map[tensor]!);
                if (c.Entry % 2 == 0) map[tensor] = other;
                else map["model.layers.99.mlp.up_proj.weight"] = other;
                return (o.ToJsonString(), true);
            case 4: // root of the wrong type, or cut short
                return (c.Entry % 2 == 0 ? "[" + baseText + "]" : baseText[..(1 + c.Entry % (baseText.Length - 2))], true);
            default: // random byte edits
                return (Encoding.UTF8.GetString(Fuzzer.Apply(Encoding.UTF8.GetBytes(baseText), c.Edits)), false);
        }
    }

    [Fact]
    public void ShardIndex_Malformed_IsRefusedOrLoads()
    {
        using var dir = Fixtures.TempDir();
        foreach (var f in Directory.GetFiles(Fixtures.Model("sharded-bf16"))) File.Copy(f, dir.File(Path.GetFileName(f)));
        Directory.CreateDirectory(dir.File("sub"));
        string index = dir.File(CheckpointFiles.IndexFile), baseText = File.ReadAllText(index);
        var files = Directory.GetFiles(dir.Path);
        int i = 0;
        Fuzzer.Run(output, "model.safetensors.index.json", IndexCases, FuzzBudget.IndexFiles, seed: 1234,
            c =>
            {
                var (text, malformed) = IndexText(baseText, c);
                File.WriteAllText(index, text);
                // most through CheckpointFiles, every tenth through the whole model load
                Action load = i++ % 10 == 0
                    ? () => { using var m = Qwen2Model.Load(dir.Path, new ModelOptions { Threads = 1 }); }
                    : () => { using var f = new CheckpointFiles(dir.Path); Assert.NotEmpty(f.TensorFiles); };
                return malformed ? Fuzzer.MustReject(load, files) : Fuzzer.Load(load, files);
            }, c => $"kind {c.Kind}: {IndexText(baseText, c).Text}");
    }
}
