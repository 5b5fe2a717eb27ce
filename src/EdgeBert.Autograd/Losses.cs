using EdgeBert.Kernels;

namespace EdgeBert.Autograd;

/// <summary>Task losses, each a scalar [1] averaged over the batch.</summary>
public static class Losses
{
    /// <summary>Mean over rows of -log softmax(logits[b])[labels[b]] for logits [B, C]. The loss is
    /// log-sum-exp minus the label's logit after subtracting the row maximum (no overflow, no log 0);
    /// the gradient is (softmax - onehot) / B.</summary>
    public static Tensor CrossEntropy(this Tape tape, Tensor logits, int[] labels)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(labels);
        int batch = logits.Rows, classes = logits.Cols;
        if (labels.Length != batch) throw new ArgumentException($"{labels.Length} labels for {batch} rows of logits");
        if (batch == 0) throw new ArgumentException("cross-entropy of an empty batch");
        foreach (int label in labels)
            if ((uint)label >= (uint)classes) throw new ArgumentOutOfRangeException(nameof(labels), $"label {label} outside [0, {classes})");
        var probabilities = tape.NewBuffer(logits.Length, false);
        var rowLosses = new double[batch];
        // Rows are independent; their losses are summed in row order afterwards, so the pool changes nothing.
        ParallelChunks.Run(tape.Pool, batch, ParallelChunks.RowGrain(classes), (_, b0, b1) =>
        {
            var chunk = probabilities.AsSpan(b0 * classes, (b1 - b0) * classes);
            logits.Data.AsSpan(b0 * classes, chunk.Length).CopyTo(chunk);
            Softmax.Rows(chunk, b1 - b0, classes);
            for (int b = b0; b < b1; b++)
            {
                var row = logits.Data.AsSpan(b * classes, classes);
                float max = float.NegativeInfinity;
                foreach (float z in row) max = Math.Max(max, z);
                double sumExp = 0;
                foreach (float z in row) sumExp += Math.Exp(z - max);
                rowLosses[b] = Math.Log(sumExp) - (row[labels[b]] - max);
            }
        });
        double total = 0;
        foreach (double rowLoss in rowLosses) total += rowLoss;
        var loss = new Tensor([(float)(total / batch)], 1);
        if (!tape.Tracks(logits)) return loss;
        loss.RequiresGrad = true;
        tape.Record(() =>
        {
            if (loss.Grad is not { } dLoss) return;
            for (int b = 0; b < batch; b++) probabilities[b * classes + labels[b]] -= 1f;
            float scale = dLoss[0] / batch;
            var dLogits = logits.EnsureGrad();
            ParallelChunks.Run(tape.Pool, probabilities.Length, ParallelChunks.ElementGrain, (_, start, end) =>
                Elementwise.Axpy(scale, probabilities.AsSpan(start..end), dLogits.AsSpan(start..end)));
        });
        return loss;
    }

    /// <summary>Mean over elements of (predictions - targets)^2 (regression, e.g. STS-B with [B, 1]).</summary>
    public static Tensor MeanSquaredError(this Tape tape, Tensor predictions, float[] targets)
    {
        ArgumentNullException.ThrowIfNull(predictions);
        ArgumentNullException.ThrowIfNull(targets);
        int count = predictions.Length;
        if (targets.Length != count) throw new ArgumentException($"{targets.Length} targets for {count} predictions");
        if (count == 0) throw new ArgumentException("mean squared error of an empty batch");
        var residual = (float[])predictions.Data.Clone();
        Elementwise.Axpy(-1f, targets, residual);
        double total = 0;
        foreach (float r in residual) total += (double)r * r;
        var loss = new Tensor([(float)(total / count)], 1);
        if (!tape.Tracks(predictions)) return loss;
        loss.RequiresGrad = true;
        tape.Record(() =>
        {
            if (loss.Grad is { } dLoss) Elementwise.Axpy(2f * dLoss[0] / count, residual, predictions.EnsureGrad());
        });
        return loss;
    }
}
