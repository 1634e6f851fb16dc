using System.Text;

namespace Qwen2.Cli;

/// <summary>The <c>qwen2</c> command.</summary>
public static class Program
{
    /// <summary>Exit code for a bad argument or an unusable checkpoint.</summary>
    public const int UsageError = 2;

    /// <summary>Entry point.</summary>
    public static int Main(string[] args)
    {
        Console.OutputEncoding = Encoding.UTF8;
        Console.InputEncoding = Encoding.UTF8;
        return Run(args, Console.In, Console.Out, Console.Error);
    }

    /// <summary>Runs the command line with the given writers and no input (tests call this).</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr) => Run(args, TextReader.Null, stdout, stderr);

    /// <summary>Runs the command line with the given reader (for <c>chat</c>) and writers.</summary>
    public static int Run(string[] args, TextReader stdin, TextWriter stdout, TextWriter stderr)
    {
        var root = new RootCommand("qwen2: run Qwen2 / Qwen2.5 checkpoints in pure managed .NET.");
        root.Subcommands.Add(DemoCommand.Create(stdout, stderr));
        root.Subcommands.Add(BenchCommand.Create(stdout, stderr));
        root.Subcommands.Add(GenerateCommand.Create(stdout, stderr));
        root.Subcommands.Add(ChatCommand.Create(stdin, stdout, stderr));
        root.Subcommands.Add(ServeCommand.Create(stdout, stderr));
        root.Subcommands.Add(TokenizeCommand.Create(stdout, stderr));
        root.Subcommands.Add(EmbedCommand.Create(stdout, stderr));
        root.Subcommands.Add(SynthCommand.Create(stdout, stderr));
        root.Subcommands.Add(ExportGgufCommand.Create(stdout, stderr));
        root.Subcommands.Add(QuantizeCommand.Create(stdout, stderr));
        root.Subcommands.Add(InfoCommand.Create(stdout, stderr));
        root.Subcommands.Add(LogitsCommand.Create(stdout, stderr));
        root.Subcommands.Add(CpuCommand.Create(stdout));
        var parsed = root.Parse(args);
        return parsed.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
    }
}
