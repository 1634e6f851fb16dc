namespace Qwen2.Native;

/// <summary>The tensors of a Hugging Face checkpoint directory's safetensors files.</summary>
internal sealed unsafe class SafeTensorsSource(CheckpointFiles files) : ITensorSource
{
    public string ConfigName => "config.json";

    public string MissingWhere => files.Files.Count == 1 ? files.Files[0].Path : Path.Combine(files.Directory, CheckpointFiles.IndexFile);

    public bool TryGet(string name, out SourceTensor tensor)
    {
        if (!files.TryGet(name, out var file, out var info))
        {
            tensor = default;
            return false;
        }
        tensor = new SourceTensor(file.Path, info.Shape, file.WeightTypeOf(info), file.Pointer(info));
        return true;
    }

    public IEnumerable<(TensorInfo Tensor, string File)> Listing =>
        files.TensorFiles.Select(kv => (kv.Value.Tensors[kv.Key], Path.GetFileName(kv.Value.Path)));

    public long DataBytes => files.Files.Sum(f => f.DataLength);

    public void Dispose() => files.Dispose();
}
