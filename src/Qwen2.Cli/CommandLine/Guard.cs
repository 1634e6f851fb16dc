using System.Text;

namespace Qwen2.Cli;

/// <summary>Runs a verb's body and turns expected failures into one error line and exit code <see cref="Program.UsageError"/>.</summary>
internal static class Guard
{
    /// <summary>Turns expected failures into one clear line on stderr and a non-zero exit code, with no stack trace.</summary>
    internal static int Run(TextWriter stderr, Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (e is CheckpointException or UsageException or ArgumentException or InvalidOperationException or NotSupportedException or IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"error: {OneLine(e.Message)}");
            return Program.UsageError;
        }
    }

    /// <summary>
    /// The message with control characters written as \uXXXX: a tensor name or JSON string from a file may hold a
    /// newline or a terminal escape, which must neither split the one error line nor reach the terminal.
    /// </summary>
    internal static string OneLine(string message)
    {
        if (!message.Any(char.IsControl)) return message;
        var sb = new StringBuilder(message.Length + 16);
        foreach (char ch in message)
        {
            if (char.IsControl(ch)) sb.Append($"\\u{(int)ch:X4}");
            else sb.Append(ch);
        }
        return sb.ToString();
    }
}
