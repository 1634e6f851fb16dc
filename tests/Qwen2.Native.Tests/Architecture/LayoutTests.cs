using System.Text.RegularExpressions;

namespace Qwen2.Native.Tests;

/// <summary>
/// The layout docs/ARCHITECTURE.md describes, held by the source itself: dependencies point one way, one public type per
/// file named after it, files short enough to read, and a Qwen2.Native root that is only the project file.
/// </summary>
public sealed partial class LayoutTests
{
    private static readonly string Src = Path.Combine(RepositoryRoot(), "src");

    /// <summary>Each folder of Qwen2.Native, and the namespaces above it that its code must never name.</summary>
    public static TheoryData<string, string[]> Layers => new()
    {
        { "Model", ["Qwen2.Native.Generation", "Qwen2.Native.Chat", "Qwen2.Native.Serving", "Qwen2.Native.Text", "Qwen2.Native.Gguf"] },
        { "Loading", ["Qwen2.Native.Generation", "Qwen2.Native.Chat", "Qwen2.Native.Serving", "Qwen2.Native.Text", "Qwen2.Native.Gguf"] },
        { "Caches", ["Qwen2.Native.Generation", "Qwen2.Native.Chat", "Qwen2.Native.Serving", "Qwen2.Native.Text", "Qwen2.Native.Gguf"] },
        { "Text", ["Qwen2.Native.Generation", "Qwen2.Native.Chat", "Qwen2.Native.Serving", "Qwen2.Native.Structured"] },
        { "Structured", ["Qwen2.Native.Generation", "Qwen2.Native.Chat", "Qwen2.Native.Serving"] },
        { "Generation", ["Qwen2.Native.Chat", "Qwen2.Native.Serving"] },
        // The chat adapters sit on top: Qwen2ChatClient runs on a session or on the batch generator.
        { "Serving", ["Qwen2.Native.Chat"] },
    };

    [Theory]
    [MemberData(nameof(Layers))]
    public void DependenciesPointDown(string folder, string[] above)
    {
        var offenders = SourceFiles(Path.Combine(Src, "Qwen2.Native", folder))
            .SelectMany(f => above.Where(ns => Regex.IsMatch(File.ReadAllText(f), $@"\b{Regex.Escape(ns)}\b")).Select(ns => $"{Relative(f)} names {ns}"))
            .ToArray();
        Assert.True(offenders.Length == 0, string.Join("\n", offenders));
    }

    [Fact]
    public void KernelsKnowNothingOfTheModel()
    {
        var offenders = SourceFiles(Path.Combine(Src, "Qwen2.Kernels")).Where(f => File.ReadAllText(f).Contains("Qwen2.Native")).Select(Relative).ToArray();
        Assert.True(offenders.Length == 0, string.Join("\n", offenders));
    }

    [Fact]
    public void OnePublicTypePerFileNamedAfterIt()
    {
        var offenders = new List<string>();
        foreach (var file in SourceFiles(Src))
        {
            var types = TopLevelPublicType().Matches(File.ReadAllText(file)).Select(m => m.Groups["name"].Value).ToArray();
            if (types.Length > 1) offenders.Add($"{Relative(file)} holds {string.Join(", ", types)}");
            else if (types.Length == 1 && types[0] != Path.GetFileNameWithoutExtension(file).Split('.')[0])
                offenders.Add($"{Relative(file)} holds {types[0]}");
        }
        Assert.True(offenders.Count == 0, string.Join("\n", offenders));
    }

    [Fact]
    public void NoSourceFileIsOver450Lines()
    {
        var offenders = SourceFiles(Src).Select(f => (File: f, Lines: File.ReadAllLines(f).Length)).Where(f => f.Lines > 450)
            .Select(f => $"{Relative(f.File)}: {f.Lines} lines").ToArray();
        Assert.True(offenders.Length == 0, string.Join("\n", offenders));
    }

    [Fact]
    public void NativeRootHoldsAtMostThreeSourceFiles()
    {
        var root = Directory.GetFiles(Path.Combine(Src, "Qwen2.Native"), "*.cs").Select(Relative).ToArray();
        Assert.True(root.Length <= 3, string.Join("\n", root));
    }

    // A type declared at column 0 (file-scoped namespaces): nested types are indented and do not count.
    [GeneratedRegex(@"^public\s+(?:(?:static|sealed|abstract|readonly|unsafe|partial|ref)\s+)*(?:class|struct|interface|enum|delegate\s+\S+|record(?:\s+struct|\s+class)?)\s+(?<name>\w+)", RegexOptions.Multiline)]
    private static partial Regex TopLevelPublicType();

    private static IEnumerable<string> SourceFiles(string dir) =>
        Directory.EnumerateFiles(dir, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"));

    private static string Relative(string path) => Path.GetRelativePath(Src, path);

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Qwen2Managed.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException($"no Qwen2Managed.sln above {AppContext.BaseDirectory}");
    }
}
