namespace EdgeBert.Autograd;

/// <summary>The layout of a packed variable-length batch: sequence i occupies token rows
/// Offset(i) .. Offset(i) + Length(i) - 1 of every [T, ...] activation, with no padding.</summary>
public sealed class SequenceBatch
{
    readonly int[] _offsets;
    readonly int[] _lengths;

    /// <summary>A batch of sequences of the given lengths, packed one after another.</summary>
    public SequenceBatch(ReadOnlySpan<int> lengths)
    {
        _lengths = lengths.ToArray();
        _offsets = new int[_lengths.Length];
        int total = 0;
        for (int i = 0; i < _lengths.Length; i++)
        {
            if (_lengths[i] <= 0)
                throw new ArgumentException($"sequence {i} has length {_lengths[i]}; every sequence needs a token");
            _offsets[i] = total;
            total = checked(total + _lengths[i]);
        }
        TotalTokens = total;
    }

    /// <summary>The number of sequences.</summary>
    public int Count => _lengths.Length;
    /// <summary>The tokens of all sequences together (rows of the packed buffer).</summary>
    public int TotalTokens { get; }
    /// <summary>The row of a sequence's first token.</summary>
    public int Offset(int sequence) => _offsets[sequence];
    /// <summary>The number of tokens of a sequence.</summary>
    public int Length(int sequence) => _lengths[sequence];
    /// <summary>Each sequence's first row.</summary>
    public ReadOnlySpan<int> Offsets => _offsets;
    /// <summary>Each sequence's number of tokens.</summary>
    public ReadOnlySpan<int> Lengths => _lengths;

    /// <summary>Row index of each sequence's first token ([CLS]), for the pooler.</summary>
    public int[] FirstTokenRows() => (int[])_offsets.Clone();
}
