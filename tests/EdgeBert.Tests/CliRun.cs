using EdgeBert.Cli;

namespace EdgeBert.Tests;

/// <summary>Runs the `edgebert` command in-process and captures what it printed.</summary>
static class CliRun
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }
}
