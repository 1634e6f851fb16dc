using System.Text.Json;

namespace Qwen2.Native;

/// <summary>
/// The weight files of a checkpoint directory: <c>model.safetensors</c>, or the shards that
/// <c>model.safetensors.index.json</c> lists, each memory-mapped once.
/// </summary>
public sealed class CheckpointFiles : IDisposable
{
    /// <summary>Name of the single-file checkpoint.</summary>
    public const string SingleFile = "model.safetensors";
    /// <summary>Name of the shard index.</summary>
    public const string IndexFile = "model.safetensors.index.json";

    private readonly List<SafeTensorsFile> _files = new();
    private readonly Dictionary<string, SafeTensorsFile> _byTensor = new(StringComparer.Ordinal);

    /// <summary>The checkpoint directory.</summary>
    public string Directory { get; }

    /// <summary>The mapped files.</summary>
    public IReadOnlyList<SafeTensorsFile> Files => _files;

    /// <summary>Every tensor name, with the file that holds it.</summary>
    public IReadOnlyDictionary<string, SafeTensorsFile> TensorFiles => _byTensor;

    /// <summary>Opens the weight files of <paramref name="directory"/>.</summary>
    /// <exception cref="CheckpointException">A file is missing or malformed.</exception>
    public CheckpointFiles(string directory)
    {
        Directory = directory;
        try
        {
            string single = Path.Combine(directory, SingleFile), index = Path.Combine(directory, IndexFile);
            if (File.Exists(single)) Add(SafeTensorsFile.Open(single));
            else if (File.Exists(index)) OpenShards(index);
            else throw new CheckpointException(directory, $"no {SingleFile} and no {IndexFile} in the checkpoint directory");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    private void OpenShards(string index)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(index)); }
        catch (JsonException e) { throw new CheckpointException(index, $"malformed JSON: {e.Message}", inner: e); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new CheckpointException(index, "has no 'weight_map' object", field: "weight_map");
            // Read every string first: System.Text.Json throws InvalidOperationException for an escape that is not valid UTF-16 ("\ud800").
            var entries = new List<(string Name, string? Shard)>();
            try
            {
                foreach (var entry in map.EnumerateObject())
                    entries.Add((entry.Name, entry.Value.ValueKind == JsonValueKind.String ? entry.Value.GetString() : null));
            }
            catch (InvalidOperationException e)
            {
                throw new CheckpointException(index, $"holds an invalid string: {e.Message}", field: "weight_map", inner: e);
            }
            var shards = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            foreach (var entry in entries)
            {
                if (entry.Shard is not { } shard) throw new CheckpointException(index, "maps to a non-string file name", entry.Name, "weight_map");
                if (shard.Length == 0 || Path.IsPathRooted(shard) || shard.Contains("..", StringComparison.Ordinal) || shard.IndexOfAny(['/', '\\']) >= 0)
                    throw new CheckpointException(index, $"names shard \"{shard}\", which is not a file name in the checkpoint directory", entry.Name, "weight_map");
                if (!shards.TryGetValue(shard, out var file))
                {
                    string shardPath = Path.Combine(Directory, shard);
                    if (!File.Exists(shardPath)) throw new CheckpointException(index, $"names shard '{shard}', which is not in {Directory}", entry.Name, "weight_map");
                    file = SafeTensorsFile.Open(shardPath);
                    shards.Add(shard, file);
                    _files.Add(file);
                }
                if (!file.Tensors.ContainsKey(entry.Name))
                    throw new CheckpointException(file.Path, $"is mapped to this shard by {IndexFile} but the shard does not hold it", entry.Name);
                _byTensor[entry.Name] = file;
            }
            // Tensors a shard holds but the index forgot are still found.
            foreach (var file in _files)
                foreach (var name in file.Tensors.Keys)
                    _byTensor.TryAdd(name, file);
        }
    }

    private void Add(SafeTensorsFile file)
    {
        _files.Add(file);
        foreach (var name in file.Tensors.Keys) _byTensor[name] = file;
    }

    /// <summary>Finds a tensor.</summary>
    public bool TryGet(string name, out SafeTensorsFile file, out TensorInfo info)
    {
        if (_byTensor.TryGetValue(name, out file!))
        {
            info = file.Tensors[name];
            return true;
        }
        info = null!;
        return false;
    }

    /// <summary>Unmaps every file.</summary>
    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
        _byTensor.Clear();
    }
}
