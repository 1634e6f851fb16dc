namespace Qwen2.Native.Gguf;

/// <summary>
/// The model an export reads: its config, its tensors through the loading layer's <see cref="ITensorSource"/> under
/// that format's <see cref="TensorNames"/>, and how its metadata becomes the new file's (from config.json and
/// tokenizer.json for a checkpoint; copied key by key from a GGUF file).
/// </summary>
internal sealed class GgufExportInput : IDisposable
{
    /// <summary>Keys a GGUF input's copy does not carry: the exporter writes its own, or they describe the input's layout.</summary>
    private static readonly HashSet<string> Rewritten = new(StringComparer.Ordinal)
    {
        "general.architecture", "general.name", "general.file_type", "general.quantization_version", "general.alignment",
    };

    private readonly Func<GgufWriter, GgufFileType, int> _writeMetadata;

    private GgufExportInput(Qwen2Config config, ITensorSource source, TensorNames names, Func<GgufWriter, GgufFileType, int> writeMetadata)
    {
        Config = config; Source = source; Names = names; _writeMetadata = writeMetadata;
    }

    public Qwen2Config Config { get; }

    public ITensorSource Source { get; }

    public TensorNames Names { get; }

    /// <summary>Adds every metadata key; returns the number of tokens listed.</summary>
    public int WriteMetadata(GgufWriter writer, GgufFileType type) => _writeMetadata(writer, type);

    /// <summary>Opens <paramref name="model"/>: a checkpoint directory, a <c>.gguf</c> file, or a directory holding one (as <see cref="Qwen2Model.Load"/>).</summary>
    public static GgufExportInput Open(string model)
    {
        if (GgufLocator.GgufModelOf(model) is { } gguf) return OpenGguf(gguf);
        var config = Qwen2Config.Load(Path.Combine(model, "config.json")) with { LastTokenPooling = SentenceTransformersFiles.Read(model).LastTokenPooling };
        var metadata = GgufExporter.CheckpointMetadata(model, config);
        var source = new SafeTensorsSource(new CheckpointFiles(model));
        return new GgufExportInput(config, source, TensorNames.HuggingFaceIn(source), metadata);
    }

    private static GgufExportInput OpenGguf(string path)
    {
        var (files, arch, config) = GgufConfigReader.Open(path);
        var m = files.First.MetadataReader;
        string name = m.String("general.name") ?? Path.GetFileNameWithoutExtension(path);
        int Copy(GgufWriter w, GgufFileType type)
        {
            GgufExporter.WriteGeneral(w, arch.Name, name, type);
            // The tokenizer (tokens, merges, token_type, special ids, chat template, pre) and the architecture's keys
            // as the input has them; a split input's split.* keys describe its parts, not the new single file.
            foreach (var (key, value) in files.First.Metadata)
                if (!Rewritten.Contains(key) && !key.StartsWith("split.", StringComparison.Ordinal)) w.AddValue(key, value);
            return config.VocabSize;
        }
        return new GgufExportInput(config, new GgufTensorSource(files), arch.Names, Copy);
    }

    public void Dispose() => Source.Dispose();
}
