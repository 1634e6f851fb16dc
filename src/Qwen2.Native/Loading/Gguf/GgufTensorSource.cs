namespace Qwen2.Native;

/// <summary>The tensors of a GGUF model (one file or the parts of a split one), shapes turned outermost first.</summary>
internal sealed unsafe class GgufTensorSource(GgufModelFiles files) : ITensorSource
{
    public string ConfigName => "the GGUF metadata";

    public string MissingWhere => files.First.Path;

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
        files.TensorFiles.Select(kv =>
        {
            kv.Value.TryGetTensor(kv.Key, out var t);
            return (new TensorInfo(t.Name, t.Type.ToString(), t.Shape, t.Offset, t.Offset + t.ByteCount), Path.GetFileName(kv.Value.Path));
        });

    public long DataBytes => files.Parts.Sum(f => f.DataLength);

    public void Dispose() => files.Dispose();
}
