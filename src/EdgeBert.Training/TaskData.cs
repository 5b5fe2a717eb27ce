using EdgeBert.Model;

namespace EdgeBert.Training;

/// <summary>A GLUE example as token ids with its gold label (class index) or score (regression).</summary>
public sealed record EncodedExample(SequenceInput Input, int Label, float Score);

public static class TaskData
{
    /// <summary>Tokenizes every example once (truncated to <paramref name="maxLength"/> tokens).</summary>
    public static EncodedExample[] Encode(IReadOnlyList<GlueExample> examples, BertWordPieceTokenizer tokenizer,
        int maxLength)
    {
        var encoded = new EncodedExample[examples.Count];
        Parallel.For(0, examples.Count, i =>
        {
            var e = examples[i];
            encoded[i] = new EncodedExample(SequenceInput.From(tokenizer.Encode(e.TextA, e.TextB, maxLength)), e.Label,
                e.Score);
        });
        return encoded;
    }

    /// <summary>A model config for <paramref name="task"/>: its labels, and regression for STS-B.</summary>
    public static void ApplyTask(BertConfig config, GlueTask task)
    {
        config.Labels = task.IsRegression ? ["score"] : task.Labels.ToArray();
        config.ProblemType = task.IsRegression ? "regression" : "single_label_classification";
    }
}
