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
              Writes config.json, model.safetensors, vocab.txt and tokenizer_config.json (made from the
              tokenizer's settings when the model has none) to --out.
              --f16 stores the weights as half precision (about half the size; the engine computes in F32).
              A classifier checkpoint drops its masked-LM head (cls.predictions.*) unless --keep-mlm-head.
              --labels renames the classes (id2label), e.g. --labels negative,positive for SST-2's 0,1.
              --strip-gates writes a dense model: no gate tensors and no gate settings in config.json (e.g. a
              gated model as the --init of `sweep`, or to compare against its dense self).
            """, (a, o) => Run(a, o, a.Flag("f16") ? TensorStorage.F16 : TensorStorage.F32)));
        verbs.Add(new CliApp.Verb("quantize", "rewrite a model with int8 weights (about 4x smaller, runs in INT8)",
            """
            edgebert quantize --model DIR --out DIR [--keep-mlm-head] [--labels A,B,..] [--strip-gates]
              Writes the model with its encoder's linear weights and its word embeddings in int8: symmetric, one
              scale per output feature (per token for the embeddings), stored as I8 tensors with an F32 tensor
              NAME_scale beside each; everything else stays F32 (docs/int8.md). config.json gets
              "precision": "int8", so every verb runs the model in INT8 unless given --precision fp32.
              The same model runs quantized on load with --precision int8 and gives the same answers.
              Other options as for export.
            """, (a, o) => Run(a, o, TensorStorage.Int8)));
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
        a.RejectUnknown();
        if (Path.GetFullPath(model) == Path.GetFullPath(output))
            throw new UsageException("--out must differ from --model");
        var checkpoint = BertCheckpoint.Load(model);
        if (!keepHead && checkpoint.Weights.ClassifierWeight is not null) checkpoint.Weights.MlmHead = null;
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
        string tokenizerConfig = Path.Combine(output, BertCheckpoint.TokenizerConfigFile);
        if (!File.Exists(tokenizerConfig) && checkpoint.Tokenizer is { } tokenizer)
        {
            // HuggingFace's BertTokenizer reads these; without the file it would not lowercase.
            var json = new System.Text.Json.Nodes.JsonObject
            {
                ["tokenizer_class"] = "BertTokenizer",
                ["do_lower_case"] = tokenizer.Options.DoLowerCase,
                ["model_max_length"] = checkpoint.MaxSequenceLength,
            };
            AtomicFile.WriteAllText(tokenizerConfig,
                json.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
        }
        long bytes = new FileInfo(Path.Combine(output, BertCheckpoint.WeightsFile)).Length;
        long f32Bytes = checkpoint.Weights.Named().Sum(t => t.Param.Length) * sizeof(float);
        o.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"wrote {output} ({bytes / 1e6:F1} MB of weights, {storage}: "
                + $"{(double)f32Bytes / bytes:F2}x smaller than F32)"));
        return 0;
    }
}
