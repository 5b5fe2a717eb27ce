using System.Reflection;
using EdgeBert.Model;

namespace EdgeBert.Tests;

/// <summary>samples/ClassifySample, run in-process on the shipped model, prints what the engine computes.</summary>
public sealed class SampleAppTests
{
    [Fact]
    public void TheSamplePrintsTheEnginesLabelAndProbabilityForEachText()
    {
        string model = Path.Combine(ModelTestFiles.RepoRoot, "weights", "edgebert-mini-sst2");
        string[] texts = ["a gripping, beautifully made film", "a dull, lifeless mess"];
        var entry = Assembly.Load("ClassifySample").EntryPoint!;
        var output = new StringWriter();
        var console = Console.Out;
        Console.SetOut(output);
        try { entry.Invoke(null, [new[] { model }.Concat(texts).ToArray()]); }
        finally { Console.SetOut(console); }

        var checkpoint = BertCheckpoint.Load(model);
        using var engine = BertEngine.Load(checkpoint);
        var lines = output.ToString().TrimEnd().Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        Assert.Equal(texts.Length, lines.Length);
        for (int i = 0; i < texts.Length; i++)
        {
            var encoded = checkpoint.RequireTokenizer().Encode(texts[i], null, checkpoint.MaxSequenceLength);
            var logits = engine.Run([SequenceInput.From(encoded)])[0].Logits;
            int best = Array.IndexOf(logits, logits.Max());
            double probability = 1 / logits.Sum(z => Math.Exp(z - logits[best]));
            Assert.Equal($"{checkpoint.Config.Labels[best]}\t{probability:F4}\t{texts[i]}", lines[i]);
        }
    }
}
