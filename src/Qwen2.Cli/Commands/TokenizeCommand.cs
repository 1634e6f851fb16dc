using System.Text;
using Qwen2.Native.Text;

namespace Qwen2.Cli;

/// <summary><c>qwen2 tokenize</c>: token ids of a text, or of each string in a JSON file.</summary>
internal static class TokenizeCommand
{
    public static Command Create(TextWriter stdout, TextWriter stderr)
    {
        var model = CommonOptions.Model();
        var text = new Option<string?>("--text") { Description = "Text to encode; prints a JSON array of ids." };
        var jsonIn = new Option<string?>("--json-in") { Description = "File with a JSON array of strings; prints a JSON array of id arrays." };
        var cmd = new Command("tokenize", "Encode text with the checkpoint's tokenizer (only tokenizer.json and tokenizer_config.json are needed), or the tokenizer in a .gguf file's metadata.") { model, text, jsonIn };
        cmd.SetAction(p => Guard.Run(stderr, () =>
        {
            string? t = p.GetValue(text), file = p.GetValue(jsonIn);
            if ((t is null) == (file is null)) throw new UsageException("give either --text TEXT or --json-in FILE");
            var tokenizer = Qwen2Tokenizer.Load(CommonOptions.ResolveModel(p.GetValue(model)));
            if (t is not null)
            {
                stdout.WriteLine(TokenIds.ToJson(tokenizer.Encode(t)));
                return 0;
            }
            var inputs = ReadStrings(file!);
            var sb = new StringBuilder("[");
            for (int i = 0; i < inputs.Length; i++) sb.Append(i == 0 ? "" : ", ").Append(TokenIds.ToJson(tokenizer.Encode(inputs[i])));
            stdout.WriteLine(sb.Append(']').ToString());
            return 0;
        }));
        return cmd;
    }

    /// <summary>The strings of a --json-in file (a JSON array of strings); a usage error naming the file and item otherwise.</summary>
    internal static string[] ReadStrings(string file)
    {
        if (!File.Exists(file)) throw new UsageException($"--json-in: file not found: {file}");
        string[] inputs;
        try
        {
            inputs = System.Text.Json.JsonSerializer.Deserialize(File.ReadAllText(file), CliJson.Default.StringArray)
                ?? throw new UsageException($"--json-in {file}: expected a JSON array of strings, got null");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new UsageException($"--json-in {file}: expected a JSON array of strings: {e.Message}");
        }
        for (int i = 0; i < inputs.Length; i++)
            if (inputs[i] is null) throw new UsageException($"--json-in {file}: item {i} is null, not a string");
        return inputs;
    }
}
