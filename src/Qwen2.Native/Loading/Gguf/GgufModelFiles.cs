using System.Text.RegularExpressions;

namespace Qwen2.Native;

/// <summary>
/// The GGUF file of a model, or all the parts of a split one (<c>NAME-00001-of-00003.gguf</c>, as llama.cpp's
/// gguf-split writes them, with <c>split.no</c>, <c>split.count</c> and <c>split.tensors.count</c>): each part mapped
/// once, the tensors of all parts found by name, the metadata read from the first part.
/// </summary>
public sealed partial class GgufModelFiles : IDisposable
{
    private readonly List<GgufFile> _parts = new();
    private readonly Dictionary<string, GgufFile> _byTensor = new(StringComparer.Ordinal);

    /// <summary>Opens <paramref name="path"/> and, when it is the first part of a split model, the other parts beside it.</summary>
    /// <exception cref="CheckpointException">A part is missing, malformed, or disagrees with the others.</exception>
    public GgufModelFiles(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        try
        {
            var first = GgufFile.Open(path);
            Add(first);
            var m = first.MetadataReader;
            int count = (int)(m.Integer("split.count", 0, 99999) ?? 1);
            if (count > 1) OpenOtherParts(first, count);
            if (m.Integer("split.tensors.count", 0) is { } total && total != _byTensor.Count)
                throw new CheckpointException(path, $"is {total}, but the {count} part(s) hold {_byTensor.Count} tensors", field: "split.tensors.count");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The first (or only) part, whose metadata describes the model.</summary>
    public GgufFile First => _parts[0];

    /// <summary>Every part, in order.</summary>
    public IReadOnlyList<GgufFile> Parts => _parts;

    /// <summary>Every tensor name, with the part that holds it.</summary>
    public IReadOnlyDictionary<string, GgufFile> TensorFiles => _byTensor;

    /// <summary>Finds a tensor in any part.</summary>
    public bool TryGet(string name, out GgufFile file, out GgufTensorInfo info)
    {
        if (_byTensor.TryGetValue(name, out file!) && file.TryGetTensor(name, out info)) return true;
        info = null!;
        return false;
    }

    [GeneratedRegex(@"^(?<stem>.+)-(?<no>\d{5})-of-(?<count>\d{5})\.gguf$", RegexOptions.IgnoreCase)]
    private static partial Regex SplitName();

    /// <summary>The name of part 1 when <paramref name="fileName"/> names a part of a split model, else null.</summary>
    public static string? FirstPartName(string fileName)
    {
        var match = SplitName().Match(fileName);
        return match.Success ? $"{match.Groups["stem"].Value}-00001-of-{match.Groups["count"].Value}.gguf" : null;
    }

    private void OpenOtherParts(GgufFile first, int count)
    {
        string name = Path.GetFileName(first.Path);
        var match = SplitName().Match(name);
        if (!match.Success || int.Parse(match.Groups["no"].Value, System.Globalization.CultureInfo.InvariantCulture) != 1)
            throw new CheckpointException(first.Path, $"says the model is split in {count} parts; open the first one, named like NAME-00001-of-{count:D5}.gguf", field: "split.count");
        CheckPart(first, 0, count);
        string stem = match.Groups["stem"].Value, directory = Path.GetDirectoryName(first.Path) ?? ".";
        for (int i = 1; i < count; i++)
        {
            string partPath = Path.Combine(directory, $"{stem}-{i + 1:D5}-of-{count:D5}.gguf");
            if (!File.Exists(partPath)) throw new CheckpointException(partPath, $"file not found: part {i + 1} of the {count} the split model has");
            var part = GgufFile.Open(partPath);
            Add(part);
            CheckPart(part, i, count);
        }
    }

    private static void CheckPart(GgufFile part, int index, int count)
    {
        var m = part.MetadataReader;
        if (m.Integer("split.no") is not { } no || no != index)
            throw new CheckpointException(part.Path, $"should be {index} in part {index + 1} of {count}", field: "split.no");
        if (m.Integer("split.count") is not { } c || c != count)
            throw new CheckpointException(part.Path, $"should be {count}, as in the first part", field: "split.count");
    }

    private void Add(GgufFile file)
    {
        _parts.Add(file);
        foreach (var t in file.Tensors)
            if (!_byTensor.TryAdd(t.Name, file))
                throw new CheckpointException(file.Path, $"is also in '{Path.GetFileName(_byTensor[t.Name].Path)}'", t.Name);
    }

    /// <summary>Unmaps every part.</summary>
    public void Dispose()
    {
        foreach (var p in _parts) p.Dispose();
        _parts.Clear();
        _byTensor.Clear();
    }
}
