namespace EdgeBert.Training;

/// <summary>Which labelled file of a GLUE task directory to read.</summary>
public enum GlueSplit { Train, Dev }

/// <summary>
/// A GLUE task: where its texts and label sit in the official TSV layout, its label list, and
/// how it is scored. Label lists and their order follow the Hugging Face GLUE processors, so a
/// classifier head fine-tuned there maps class i to the same label here.
/// </summary>
public sealed class GlueTask
{
    public string Name { get; }

    /// <summary>String labels as written in the files; class index i is Labels[i]. Empty for regression.</summary>
    public IReadOnlyList<string> Labels { get; }

    public bool IsRegression { get; }

    public bool IsPair => TextBColumn is not null;

    /// <summary>Outputs of the model head: one score for regression, else one logit per label.</summary>
    public int NumLabels => IsRegression ? 1 : Labels.Count;

    /// <summary>Metrics reported for the task, in reporting order (names from <see cref="MetricNames"/>).</summary>
    public IReadOnlyList<string> Metrics { get; }

    /// <summary>The metric used to pick the best checkpoint; one of <see cref="Metrics"/>.</summary>
    public string MainMetric { get; }

    public string TrainFileName => "train.tsv";

    public string DevFileName { get; }

    /// <summary>True when the first line of a file names its columns (every task but CoLA).</summary>
    public bool HasHeader => FixedColumns is null;

    internal string TextAColumn { get; }
    internal string? TextBColumn { get; }
    internal string LabelColumn { get; }

    /// <summary>Column names of a headerless layout; null when the file has a header line.</summary>
    internal IReadOnlyList<string>? FixedColumns { get; }

    private GlueTask(string name, string[] labels, string[] metrics, string mainMetric,
        string textA, string? textB, string label, string[]? fixedColumns = null,
        string devFileName = "dev.tsv")
    {
        Name = name;
        Labels = labels;
        IsRegression = labels.Length == 0;
        Metrics = metrics;
        MainMetric = mainMetric;
        TextAColumn = textA;
        TextBColumn = textB;
        LabelColumn = label;
        FixedColumns = fixedColumns;
        DevFileName = devFileName;
    }

    private static readonly string[] BinaryDigits = ["0", "1"];
    private static readonly string[] Entailment = ["entailment", "not_entailment"];
    private static readonly string[] Accuracy = [MetricNames.Accuracy];
    private static readonly string[] AccuracyF1 = [MetricNames.Accuracy, MetricNames.F1];

    // Main metrics follow the BERT paper's GLUE table: F1 for MRPC and QQP, Spearman for STS-B,
    // Matthews correlation for CoLA, accuracy elsewhere.
    public static GlueTask Sst2 { get; } = new("SST-2", BinaryDigits, Accuracy, MetricNames.Accuracy,
        "sentence", null, "label");

    // CoLA train/dev files have no header line.
    public static GlueTask Cola { get; } = new("CoLA", BinaryDigits, [MetricNames.Mcc], MetricNames.Mcc,
        "sentence", null, "label", fixedColumns: ["source", "label", "original_label", "sentence"]);

    public static GlueTask Mrpc { get; } = new("MRPC", BinaryDigits, AccuracyF1, MetricNames.F1,
        "#1 String", "#2 String", "Quality");

    public static GlueTask Qqp { get; } = new("QQP", BinaryDigits, AccuracyF1, MetricNames.F1,
        "question1", "question2", "is_duplicate");

    public static GlueTask StsB { get; } = new("STS-B", [], [MetricNames.Pearson, MetricNames.Spearman],
        MetricNames.Spearman, "sentence1", "sentence2", "score");

    public static GlueTask Mnli { get; } = new("MNLI", ["contradiction", "entailment", "neutral"], Accuracy,
        MetricNames.Accuracy, "sentence1", "sentence2", "gold_label", devFileName: "dev_matched.tsv");

    public static GlueTask Qnli { get; } = new("QNLI", Entailment, Accuracy, MetricNames.Accuracy,
        "question", "sentence", "label");

    public static GlueTask Rte { get; } = new("RTE", Entailment, Accuracy, MetricNames.Accuracy,
        "sentence1", "sentence2", "label");

    public static GlueTask Wnli { get; } = new("WNLI", BinaryDigits, Accuracy, MetricNames.Accuracy,
        "sentence1", "sentence2", "label");

    public static IReadOnlyList<GlueTask> All { get; } = [Sst2, Cola, Mrpc, Qqp, StsB, Mnli, Qnli, Rte, Wnli];

    /// <summary>Finds a task by name, ignoring case, '-' and '_' ("sst2", "SST-2", "sts_b").</summary>
    public static bool TryGet(string name, out GlueTask task)
    {
        string key = Normalize(name);
        foreach (var candidate in All)
        {
            if (Normalize(candidate.Name) == key)
            {
                task = candidate;
                return true;
            }
        }
        task = null!;
        return false;
    }

    public static GlueTask Get(string name) =>
        TryGet(name, out var task)
            ? task
            : throw new ArgumentException(
                $"unknown GLUE task '{name}'; known tasks: {string.Join(", ", All.Select(t => t.Name))}",
                nameof(name));

    /// <summary>Path of the train or dev file inside a task directory such as glue/SST-2.</summary>
    public string FilePath(string taskDirectory, GlueSplit split) =>
        Path.Combine(taskDirectory, split == GlueSplit.Train ? TrainFileName : DevFileName);

    public override string ToString() => Name;

    private static string Normalize(string name) =>
        name.Replace("-", "").Replace("_", "").ToLowerInvariant();
}
