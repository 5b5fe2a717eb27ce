using EdgeBert.Model;

namespace EdgeBert.Cli;

/// <summary>`edgebert export` and `edgebert quantize`: rewrite a checkpoint for shipping (F16 or int8 storage,
/// without the MLM head); `edgebert average`: the mean of several fine-tunes as one checkpoint.</summary>
static class ExportVerb
{
    public static void Register(List<CliApp.Verb> verbs)
    {
        verbs.Add(new CliApp.Verb("export", "rewrite a model for shipping (F16 weights, no pretraining head)",
            """
            edgebert export --model DIR --out DIR [--f16] [--keep-mlm-head] [--labels A,B,..] [--strip-gates]
                            [--vocab-size N --vocab-from PATH[,PATH..]]
              Writes config.json, model.safetensors, vocab.txt and tokenizer_config.json (made from the
              tokenizer's settings when the model has none) to --out.
              --f16 stores the weights as half precision (about half the size; the engine computes in F32).
              A classifier checkpoint drops its masked-LM head (cls.predictions.*) unless --keep-mlm-head.
              --labels renames the classes (id2label), e.g. --labels negative,positive for SST-2's 0,1.
              --strip-gates writes a dense model: no gate tensors and no gate settings in config.json (e.g. a
              gated model as the --init of `sweep`, or to compare against its dense self).
              --vocab-size N keeps the N tokens the --vocab-from texts use most (and every special token and
              single character), shrinking vocab.txt and the word embeddings: words made of kept pieces
              tokenize as before, others split into smaller pieces. Each PATH (a text file, a .tsv whose
              non-numeric fields are texts, or a directory of them) weighs the same. Check the result with eval.
            """, (a, o) => Run(a, o, a.Flag("f16") ? TensorStorage.F16 : TensorStorage.F32)));
        verbs.Add(new CliApp.Verb("quantize", "rewrite a model with int8 weights (about 4x smaller, runs in INT8)",
            """
            edgebert quantize --model DIR --out DIR [--f16] [--keep-mlm-head] [--labels A,B,..] [--strip-gates]
                              [--vocab-size N --vocab-from PATH[,PATH..]]
              Writes the model with its encoder's linear weights and its word embeddings in int8: symmetric, one
              scale per output feature (per token for the embeddings), stored as I8 tensors with an F32 tensor
              NAME_scale beside each; everything else stays F32 (docs/int8.md), or F16 with --f16. config.json
              gets "precision": "int8", so every verb runs the model in INT8 unless given --precision fp32.
              The same model runs quantized on load with --precision int8 and gives the same answers.
              Other options as for export.
            """, (a, o) => Run(a, o, a.Flag("f16") ? TensorStorage.Int8F16 : TensorStorage.Int8)));
        verbs.Add(new CliApp.Verb("average", "average the weights of several fine-tunes of one model (a model soup)",
            """
            edgebert average --models DIR,DIR[,DIR..] --out DIR
              Writes a model whose every tensor is the mean of the models' tensors (F32), with the first model's
              config and vocabulary. The models must share config.json exactly. Useful for fine-tunes from the
              same pretrained model and classifier init that differ only in data order and dropout
              (`train --seed S --init-seed 42`): their mean often scores better than each. Check it with `eval`.
            """, Average));
    }

    static int Average(ParsedArgs a, TextWriter o)
    {
        var models = a.RequiredString("models")
            .Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        string output = a.RequiredString("out");
        a.RejectUnknown();
        if (models.Length < 2)
            throw new UsageException("--models needs at least two model directories, separated by commas");
        foreach (var m in models)
        {
            if (!Directory.Exists(m)) throw new DirectoryNotFoundException($"{m}: model directory not found");
            if (Path.GetFullPath(m) == Path.GetFullPath(output))
                throw new UsageException("--out must differ from every --models entry");
        }
        WeightAverage.Mean(models).Save(output);
        o.WriteLine($"wrote {output}: the mean of {models.Length} models");
        return 0;
    }

    static int Run(ParsedArgs a, TextWriter o, TensorStorage storage)
    {
        string model = a.RequiredString("model"), output = a.RequiredString("out");
        bool keepHead = a.Flag("keep-mlm-head"), stripGates = a.Flag("strip-gates");
        var labels = a.String("labels")?.Split(',', StringSplitOptions.TrimEntries);
        int vocabSize = a.Int("vocab-size", 0, 1);
        var vocabSources = a.String("vocab-from")?.Split(',', StringSplitOptions.TrimEntries
            | StringSplitOptions.RemoveEmptyEntries);
        a.RejectUnknown();
        if (Path.GetFullPath(model) == Path.GetFullPath(output))
            throw new UsageException("--out must differ from --model");
        if ((vocabSize > 0) != (vocabSources is { Length: > 0 }))
            throw new UsageException("--vocab-size and --vocab-from go together");
        foreach (var source in vocabSources ?? [])
            if (!File.Exists(source) && !Directory.Exists(source))
                throw new FileNotFoundException($"{source}: --vocab-from file or directory not found");
        var checkpoint = BertCheckpoint.Load(model);
        if (!keepHead && checkpoint.Weights.ClassifierWeight is not null) checkpoint.Weights.MlmHead = null;
        if (vocabSize > 0)
        {
            if (checkpoint.Weights.MlmHead is not null)
                throw new UsageException("--vocab-size cannot prune the masked-LM head: drop --keep-mlm-head");
            checkpoint = PruneVocabulary(checkpoint, vocabSize, vocabSources!, o);
        }
        if (stripGates)
        {
            if (!checkpoint.Weights.HasGates)
                throw new InvalidDataException($"{model}: the model has no gates to strip");
            checkpoint.StripGates();
        }
        if (labels is not null)
        {
            if (labels.Length != checkpoint.Config.NumLabels || labels.Any(string.IsNullOrEmpty)
                || labels.Distinct().Count() != labels.Length)
                throw new UsageException($"--labels needs {checkpoint.Config.NumLabels} distinct names, "
                    + $"got '{string.Join(',', labels)}'");
            checkpoint.Config.Labels = labels;
        }
        checkpoint.Save(output, storage);
        long bytes = new FileInfo(Path.Combine(output, BertCheckpoint.WeightsFile)).Length;
        long f32Bytes = checkpoint.Weights.Named().Sum(t => t.Param.Length) * sizeof(float);
        o.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"wrote {output} ({bytes / 1e6:F1} MB of weights, {storage}: "
                + $"{(double)f32Bytes / bytes:F2}x smaller than F32)"));
        return 0;
    }

    static BertCheckpoint PruneVocabulary(BertCheckpoint checkpoint, int size, string[] sources, TextWriter o)
    {
        var tokenizer = checkpoint.RequireTokenizer();
        if (size >= tokenizer.VocabSize)
            throw new UsageException($"--vocab-size {size} is not below the model's {tokenizer.VocabSize} tokens");
        var frequency = VocabularyPruning.Frequencies(tokenizer, sources.Select(SourceTexts));
        int[] kept;
        try { kept = VocabularyPruning.SelectTokens(tokenizer, frequency, size); }
        catch (ArgumentException e) { throw new UsageException($"--vocab-size: {e.Message}"); }
        int seen = frequency.Count(f => f > 0);
        o.WriteLine($"vocabulary: {kept.Length} of {tokenizer.VocabSize} tokens kept ({seen} occur in --vocab-from"
            + (kept.Length < size ? ", all of them kept" : "") + ")");
        return VocabularyPruning.Prune(checkpoint, kept);
    }

    /// <summary>Longest line a --vocab-from file may have: bounds the memory a hostile file (one endless line) takes.
    /// </summary>
    const int MaxSourceLineChars = 1 << 20;

    /// <summary>The texts of a file (its lines; a .tsv's non-numeric fields, so labels and ids do not count) or
    /// of every such file under a directory.</summary>
    static IEnumerable<string> SourceTexts(string path)
    {
        IEnumerable<string> files = Directory.Exists(path)
            ? Directory.EnumerateFiles(path, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            : [path];
        foreach (var file in files)
        {
            bool tsv = file.EndsWith(".tsv", StringComparison.OrdinalIgnoreCase);
            foreach (var line in InputFile.ReadLines(file, MaxSourceLineChars))
            {
                if (!tsv) { yield return line; continue; }
                foreach (var field in line.Split('\t'))
                    if (!double.TryParse(field, System.Globalization.CultureInfo.InvariantCulture, out _))
                        yield return field;
            }
        }
    }
}
