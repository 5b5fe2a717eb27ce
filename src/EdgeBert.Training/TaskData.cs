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

    /// <summary>A model config for <paramref name="task"/>: its labels, regression for STS-B, and the task's
    /// name.</summary>
    public static void ApplyTask(BertConfig config, GlueTask task)
    {
        config.Labels = TaskLabels(task);
        config.ProblemType = task.IsRegression ? "regression" : "single_label_classification";
        config.FinetuningTask = task.Name;
    }

    /// <summary>The labels of a model head for the task: the file's labels, or one "score" for regression.</summary>
    public static string[] TaskLabels(GlueTask task) => task.IsRegression ? ["score"] : task.Labels.ToArray();

    /// <summary>True when the checkpoint already has a classifier for the task: config.json names the task
    /// (finetuning_task) and the head has its number of outputs, or, for a model without the key, its labels
    /// are the task's.</summary>
    public static bool IsFineTunedOn(BertCheckpoint checkpoint, GlueTask task)
    {
        if (checkpoint.Weights.ClassifierWeight is null) return false;
        var config = checkpoint.Config;
        if (config.FinetuningTask is { } name)
            return GlueTask.TryGet(name, out var named) && named == task && config.NumLabels == task.NumLabels;
        return config.Labels.SequenceEqual(TaskLabels(task));
    }

    /// <summary>Whether a model can be scored on the task: an error when its head has another number of
    /// outputs (no metric can be computed); else a warning when config.json names another task, or names none
    /// and the labels differ from the task's (class i is then read as the task's label i), or null.</summary>
    public static string? LabelWarning(BertConfig config, GlueTask task)
    {
        if (config.NumLabels != task.NumLabels)
            throw new InvalidDataException($"the model has {config.NumLabels} label(s) "
                + $"({string.Join(", ", config.Labels)}), {task.Name} needs {task.NumLabels}");
        if (config.FinetuningTask is { } name)
            return GlueTask.TryGet(name, out var named) && named == task ? null
                : $"the model is fine-tuned on {name} (config.json finetuning_task), not {task.Name}";
        return config.Labels.SequenceEqual(TaskLabels(task)) ? null
            : $"the model's labels ({string.Join(", ", config.Labels)}) are not {task.Name}'s "
                + $"({string.Join(", ", TaskLabels(task))}): class i is read as {task.Name}'s label i";
    }
}
