using System.Diagnostics;
using System.Globalization;
using EdgeBert.Model;

namespace EdgeBert.Cli;

/// <summary>`edgebert bench embed`: sentence embeddings one text a call, the way an app embeds a query.</summary>
static class EmbedBench
{
    public const string Usage = """
        edgebert bench embed --model DIR --input IN.jsonl --threads T [--seconds X] [--max-len N]
                             [--precision fp32|int8] [--json]
          Embeds the lines of IN.jsonl (as `embed --input` reads them; tokenized before the timing) one
          text a call, in order, pass after pass for at least --seconds (default 2) after one warm-up pass;
          prints texts/s of the best pass, or with --json {"texts_per_s","ms_per_text","texts",...}.
        """;

    public static int Run(ParsedArgs a, TextWriter o)
    {
        string modelDir = a.RequiredString("model"), input = a.RequiredString("input");
        int threads = a.Int("threads", 1, 1, 256);
        double seconds = a.Double("seconds", 2, 0, 3600);
        int? maxLen = a.Has("max-len") ? a.Int("max-len", 0, 2) : null;
        bool json = a.Flag("json");
        var engineOptions = PrecisionOption.Read(a);
        a.RejectUnknown(maxPositionals: 1);
        InputFile.RequireRegular(input);

        using var embedder = TextEmbedder.Load(modelDir,
            new EmbedderOptions { Threads = threads, Precision = engineOptions.Precision, MaxLength = maxLen });
        var sequences = InferVerbs.ReadInputs(input, embedder.Encode, embedder.Engine, allowEmptyText: true);
        long tokens = sequences.Sum(s => (long)s.InputIds.Length);

        Pass(embedder, sequences);
        double best = double.MaxValue;
        int passes = 0;
        var total = Stopwatch.StartNew();
        while (total.Elapsed.TotalSeconds < seconds || passes < 1)
        {
            best = Math.Min(best, Pass(embedder, sequences));
            passes++;
        }
        double textsPerSecond = sequences.Count / best, msPerText = best * 1e3 / sequences.Count;
        var inv = CultureInfo.InvariantCulture;
        string precision = embedder.Engine.Precision.ToString().ToLowerInvariant();
        if (json)
            o.WriteLine(string.Create(inv,
                $$"""{"texts_per_s":{{Math.Round(textsPerSecond, 1)}},"ms_per_text":{{Math.Round(msPerText, 4)}}"""
                + $$""","texts":{{sequences.Count}},"tokens":{{tokens}},"threads":{{threads}},"""
                + $"\"precision\":\"{precision}\",\"passes\":{passes}}}"));
        else
            o.WriteLine(string.Create(inv,
                $"embed {sequences.Count} texts ({tokens} tokens) one a call, {threads} thread(s), {precision}: "
                + $"{textsPerSecond:F1} texts/s, {msPerText:F3} ms/text (best of {passes} passes)"));
        return 0;
    }

    /// <summary>Seconds to embed every sequence, one a call.</summary>
    static double Pass(TextEmbedder embedder, List<SequenceInput> sequences)
    {
        long start = Stopwatch.GetTimestamp();
        foreach (var sequence in sequences) embedder.Embed([sequence]);
        return Stopwatch.GetElapsedTime(start).TotalSeconds;
    }
}
