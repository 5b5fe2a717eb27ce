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
        if (labels.Length != logits.Rows)
            throw new ArgumentException($"{labels.Length} labels for {logits.Rows} rows of logits");
        foreach (int label in labels)
            if ((uint)label >= (uint)logits.Cols)
                throw new ArgumentOutOfRangeException(nameof(labels), $"label {label} outside [0, {logits.Cols})");
        return CrossEntropy(tape, logits, labels, null);
    }

    /// <summary>Cross-entropy against target distributions (rows of <paramref name="targets"/>, [B, C], each
    /// summing to 1), e.g. a teacher's probabilities mixed with the labels for distillation:
    /// mean over rows of -sum_c p[b,c] log softmax(logits[b])[c]; the gradient is (softmax - p) / B.</summary>
    public static Tensor CrossEntropy(this Tape tape, Tensor logits, float[] targets)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(targets);
        if (targets.Length != logits.Length)
            throw new ArgumentException($"{targets.Length} target probabilities for {logits.Length} logits");
        for (int b = 0; b < logits.Rows; b++)
        {
            double sum = 0;
            foreach (float p in targets.AsSpan(b * logits.Cols, logits.Cols))
            {
                if (!(p >= 0))
                    throw new ArgumentOutOfRangeException(nameof(targets),
                        $"row {b}: target probability {p} is negative or NaN");
                sum += p;
            }
            if (Math.Abs(sum - 1) > 1e-4)
                throw new ArgumentException($"row {b}: target probabilities sum to {sum}, not 1");
        }
        return CrossEntropy(tape, logits, null, targets);
    }

    /// <summary>Hard labels (one-hot rows) or soft target rows: log-sum-exp minus the
    /// targets' weighted logits.</summary>
    static Tensor CrossEntropy(Tape tape, Tensor logits, int[]? labels, float[]? targets)
    {
        int batch = logits.Rows, classes = logits.Cols;
        if (batch == 0) throw new ArgumentException("cross-entropy of an empty batch");
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
                double target = 0;
                if (labels is not null) target = row[labels[b]] - max;
                else
                    for (int c = 0; c < classes; c++) target += (double)targets![b * classes + c] * (row[c] - max);
                rowLosses[b] = Math.Log(sumExp) - target;
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
            if (labels is not null)
                for (int b = 0; b < batch; b++) probabilities[b * classes + labels[b]] -= 1f;
            else Elementwise.Axpy(-1f, targets!, probabilities);
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
