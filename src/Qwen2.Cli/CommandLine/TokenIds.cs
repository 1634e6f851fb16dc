namespace Qwen2.Cli;

/// <summary>Token ids on the command line: comma-separated in, a JSON array out.</summary>
internal static class TokenIds
{
    /// <summary>The ids of "1,17,42"; an item that is not an integer is a usage error naming it.</summary>
    internal static int[] Parse(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        var ids = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out ids[i]))
                throw new UsageException($"--tokens: \"{parts[i]}\" (item {i + 1}) is not an integer token id");
        return ids;
    }

    /// <summary>The ids as a JSON array, e.g. [1, 17, 42].</summary>
    internal static string ToJson(IEnumerable<int> ids) => "[" + string.Join(", ", ids.Select(i => i.ToString(CultureInfo.InvariantCulture))) + "]";
}
