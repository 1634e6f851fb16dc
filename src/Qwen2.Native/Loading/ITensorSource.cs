namespace Qwen2.Native;

/// <summary>
/// Where a model's tensors come from (safetensors files, GGUF files), by the name that source uses. The loader asks
/// for each tensor through <see cref="TensorNames"/>, so the per-layer code exists once for every format.
/// </summary>
internal interface ITensorSource : IDisposable
{
    /// <summary>What the shapes are checked against in error messages, e.g. "config.json" or "the GGUF metadata".</summary>
    string ConfigName { get; }

    /// <summary>The file or index an error about a missing tensor names.</summary>
    string MissingWhere { get; }

    /// <summary>Finds a tensor; its type is checked (an unsupported one is a <see cref="CheckpointException"/>).</summary>
    bool TryGet(string name, out SourceTensor tensor);

    /// <summary>Every tensor, described as a safetensors header entry (dtype by name, shape outermost first), with its file name.</summary>
    IEnumerable<(TensorInfo Tensor, string File)> Listing { get; }

    /// <summary>Bytes of the mapped data sections.</summary>
    long DataBytes { get; }
}
