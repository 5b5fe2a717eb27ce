namespace EdgeBert.Model;

/// <summary>The element-wise mean of several checkpoints of one shape ("model soup", Wortsman et al. 2022):
/// fine-tunes that start from the same weights and differ in data order and dropout tend to lie in one
/// basin of the loss, where their mean is often better than each of them.</summary>
public static class WeightAverage
{
    /// <summary>Loads the model directories one at a time and returns a checkpoint whose every tensor is
    /// their mean; the first gives the config and tokenizer. Throws when the models differ
    /// in config or tensors.</summary>
    public static BertCheckpoint Mean(IReadOnlyList<string> directories)
    {
        if (directories.Count == 0) throw new ArgumentException("no models to average");
        var result = BertCheckpoint.Load(directories[0]);
        string config = result.Config.ToJson().ToJsonString();
        var tensors = result.Weights.Named().ToArray();
        var sums = tensors.Select(t => t.Param.Values.Select(v => (double)v).ToArray()).ToArray();
        foreach (var directory in directories.Skip(1))
        {
            var model = BertCheckpoint.Load(directory);
            if (model.Config.ToJson().ToJsonString() != config)
                throw new InvalidDataException($"{directory}: config.json differs from {directories[0]}'s; "
                    + "only models of one shape, labels and gate setting can be averaged");
            var other = model.Weights.Named().ToArray();
            var missing = tensors.Select(t => t.Name).Except(other.Select(t => t.Name))
                .Concat(other.Select(t => t.Name).Except(tensors.Select(t => t.Name))).ToArray();
            if (missing.Length > 0)
                throw new InvalidDataException($"{directory}: "
                    + $"tensors differ from {directories[0]}'s (e.g. {string.Join(", ", missing.Take(3))})");
            for (int t = 0; t < tensors.Length; t++)
            {
                var values = other[t].Param.Values;
                for (int i = 0; i < values.Length; i++) sums[t][i] += values[i];
            }
        }
        for (int t = 0; t < tensors.Length; t++)
        {
            var mean = tensors[t].Param.Values;
            for (int i = 0; i < mean.Length; i++) mean[i] = (float)(sums[t][i] / directories.Count);
        }
        return result;
    }
}
