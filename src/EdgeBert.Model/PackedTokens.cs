namespace EdgeBert.Model;

/// <summary>The bookkeeping of a packed token buffer (rows = tokens of all sequences, no padding):
/// sequence s occupies rows Offsets[s] .. Offsets[s] + Lengths[s] - 1, and Positions[row] is the row's
/// original position in its sequence. Gating removes rows; the survivors move down in place.</summary>
public sealed class PackedTokens
{
    int[] _offsets = [], _lengths = [], _positions = [];

    /// <summary>The number of sequences.</summary>
    public int Count { get; private set; }
    /// <summary>The live tokens of all sequences (rows of the buffer).</summary>
    public int Rows { get; private set; }
    /// <summary>Each sequence's first row.</summary>
    public ReadOnlySpan<int> Offsets => _offsets.AsSpan(0, Count);
    /// <summary>Each sequence's live tokens.</summary>
    public ReadOnlySpan<int> Lengths => _lengths.AsSpan(0, Count);
    /// <summary>Each row's position in its original sequence.</summary>
    public ReadOnlySpan<int> Positions => _positions.AsSpan(0, Rows);

    /// <summary>Lays the sequences out one after the other, every token at its own position.</summary>
    public void Reset(IReadOnlyList<SequenceInput> batch)
    {
        Count = batch.Count;
        Rows = 0;
        foreach (var s in batch) Rows += s.InputIds.Length;
        Grow(ref _offsets, Count);
        Grow(ref _lengths, Count);
        Grow(ref _positions, Rows);
        for (int s = 0, row = 0; s < Count; s++)
        {
            int n = batch[s].InputIds.Length;
            _offsets[s] = row;
            _lengths[s] = n;
            for (int p = 0; p < n; p++) _positions[row++] = p;
        }
    }

    /// <summary>Keeps, for each sequence, the rows a compaction plan names (<paramref name="keptRows"/>, in
    /// order, sequence after sequence, <paramref name="keptLengths"/>[s] of them) and moves them down in x
    /// [rows, width]. Kept rows only ever move to lower indices, so a forward copy never overwrites a row
    /// still to be read.</summary>
    public void Compact(ReadOnlySpan<int> keptLengths, ReadOnlySpan<int> keptRows, Span<float> x, int width)
    {
        int write = 0;
        for (int s = 0; s < Count; s++)
        {
            for (int i = 0; i < keptLengths[s]; i++, write++)
            {
                int from = keptRows[write];
                if (from == write) continue;
                x.Slice(from * width, width).CopyTo(x.Slice(write * width, width));
                _positions[write] = _positions[from];
            }
            _offsets[s] = write - keptLengths[s];
            _lengths[s] = keptLengths[s];
        }
        Rows = write;
    }

    static void Grow(ref int[] buffer, int length)
    {
        if (buffer.Length < length) buffer = GC.AllocateUninitializedArray<int>(length);
    }
}
