using System.Globalization;
using System.Text;

namespace EdgeBert.Training;

/// <summary>
/// One labelled GLUE example. Classification: <see cref="Label"/> is the index into
/// <see cref="GlueTask.Labels"/> and <see cref="Score"/> is NaN. Regression: <see cref="Score"/>
/// is the gold score and <see cref="Label"/> is -1. <see cref="Line"/> is the 1-based line in the source file.
/// </summary>
public sealed record GlueExample(string TextA, string? TextB, int Label, float Score, int Line);

/// <summary>
/// Reads GLUE train/dev TSV files in the official layouts: UTF-8, one example per LF-terminated
/// line, fields split on tab only. There is no quote handling (fields such as <c>"The pie</c>
/// with an unbalanced quote are kept verbatim, as the GLUE loaders do with quoting disabled).
/// A leading BOM (MRPC) is skipped and a CR before the LF is dropped. Every malformed row is an
/// <see cref="InvalidDataException"/> naming the file and line; unlabelled (test) files are rejected.
/// </summary>
public static class GlueReader
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false,
        throwOnInvalidBytes: true);

    public static IReadOnlyList<GlueExample> Read(GlueTask task, string taskDirectory, GlueSplit split) =>
        Read(task, task.FilePath(taskDirectory, split));

    public static IReadOnlyList<GlueExample> Read(GlueTask task, string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        ReadOnlySpan<byte> rest = bytes;
        if (rest.StartsWith("\uFEFF"u8))
            rest = rest[3..];
        // A final newline (or several) ends the last row; it does not start an empty one.
        rest = rest.TrimEnd("\r\n"u8);
        if (rest.IsEmpty)
            throw Error(path, 1, "the file is empty");

        var examples = new List<GlueExample>();
        Columns? columns = task.HasHeader ? null : Columns.Resolve(task, task.FixedColumns!, path);
        int lineNumber = 0;
        while (!rest.IsEmpty)
        {
            lineNumber++;
            int newline = rest.IndexOf((byte)'\n');
            ReadOnlySpan<byte> lineBytes = newline < 0 ? rest : rest[..newline];
            rest = newline < 0 ? [] : rest[(newline + 1)..];
            if (lineBytes.EndsWith("\r"u8))
                lineBytes = lineBytes[..^1];

            string[] fields = Decode(lineBytes, path, lineNumber).Split('\t');
            if (columns is null)
            {
                columns = Columns.Resolve(task, fields, path);
                continue;
            }
            if (lineNumber == 1 && !task.HasHeader && IsUnlabelledHeader(fields))
                throw Error(path, lineNumber,
                    $"this looks like a GLUE test file (header '{string.Join("\\t", fields)}', no labels); "
                    + $"only labelled train/dev files can be read for {task.Name}");
            examples.Add(columns.Parse(fields, path, lineNumber));
        }
        return examples;
    }

    // CoLA's test.tsv, unlike its train/dev files, starts with an "index<TAB>sentence" header.
    private static bool IsUnlabelledHeader(string[] fields) =>
        fields.Length == 2 && fields[0] == "index" && fields[1] == "sentence";

    private static string Decode(ReadOnlySpan<byte> line, string path, int lineNumber)
    {
        try
        {
            return StrictUtf8.GetString(line);
        }
        catch (DecoderFallbackException e)
        {
            throw Error(path, lineNumber, $"invalid UTF-8 ({e.Message})");
        }
    }

    internal static InvalidDataException Error(string path, int lineNumber, string message) =>
        new($"{path}: line {lineNumber}: {message}");

    /// <summary>Positions of the needed columns, resolved once from the header (or fixed layout).</summary>
    private sealed class Columns
    {
        private readonly GlueTask _task;
        private readonly int _count, _textA, _textB, _label;

        private Columns(GlueTask task, int count, int textA, int textB, int label)
        {
            _task = task;
            _count = count;
            _textA = textA;
            _textB = textB;
            _label = label;
        }

        public static Columns Resolve(GlueTask task, IReadOnlyList<string> names, string path)
        {
            int label = IndexOf(names, task.LabelColumn);
            if (label < 0)
                throw Error(path, 1,
                    $"no '{task.LabelColumn}' column in the header '{string.Join("\\t", names)}': "
                    + $"an unlabelled (test) file or not a {task.Name} file; "
                    + "only labelled train/dev files can be read");
            int textA = Require(names, task.TextAColumn, task, path);
            int textB = task.TextBColumn is null ? -1 : Require(names, task.TextBColumn, task, path);
            return new Columns(task, names.Count, textA, textB, label);
        }

        public GlueExample Parse(string[] fields, string path, int lineNumber)
        {
            if (fields.Length != _count)
                throw Error(path, lineNumber,
                    $"expected {_count} tab-separated columns for {_task.Name}, found {fields.Length}");
            string textA = fields[_textA];
            string? textB = _textB < 0 ? null : fields[_textB];
            string label = fields[_label];
            if (_task.IsRegression)
            {
                if (!double.TryParse(label, NumberStyles.Float, CultureInfo.InvariantCulture, out double score)
                    || !double.IsFinite(score))
                    throw Error(path, lineNumber, $"score '{label}' is not a finite number");
                return new GlueExample(textA, textB, -1, (float)score, lineNumber);
            }
            int index = IndexOf(_task.Labels, label);
            if (index < 0)
                throw Error(path, lineNumber,
                    $"unknown {_task.Name} label '{label}'; expected one of: {string.Join(", ", _task.Labels)}");
            return new GlueExample(textA, textB, index, float.NaN, lineNumber);
        }

        private static int Require(IReadOnlyList<string> names, string name, GlueTask task, string path)
        {
            int index = IndexOf(names, name);
            return index >= 0
                ? index
                : throw Error(path, 1,
                    $"no '{name}' column in the header '{string.Join("\\t", names)}' (not a {task.Name} file?)");
        }

        private static int IndexOf(IReadOnlyList<string> items, string value)
        {
            for (int i = 0; i < items.Count; i++)
            {
                if (string.Equals(items[i], value, StringComparison.Ordinal))
                    return i;
            }
            return -1;
        }
    }
}
