namespace Qwen2.Cli.Tests;

/// <summary>Runs the qwen2 command in process and captures what it prints.</summary>
internal static class Cli
{
    public static (int Code, string Out, string Err) Run(params string[] args) => RunWithInput("", args);

    public static (int Code, string Out, string Err) RunWithInput(string stdin, params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Program.Run(args, new StringReader(stdin), stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }
}
