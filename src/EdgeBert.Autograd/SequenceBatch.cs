namespace EdgeBert.Autograd;

/// <summary>The layout of a packed variable-length batch: sequence i occupies token rows
/// Offset(i) .. Offset(i) + Length(i) - 1 of every [T, ...] activation, with no padding.</summary>
public sealed class SequenceBatch
{
    readonly int[] _offsets;
    readonly int[] _lengths;

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

    public int Count => _lengths.Length;
    public int TotalTokens { get; }
    public int Offset(int sequence) => _offsets[sequence];
    public int Length(int sequence) => _lengths[sequence];
    public ReadOnlySpan<int> Offsets => _offsets;
    public ReadOnlySpan<int> Lengths => _lengths;

    /// <summary>Row index of each sequence's first token ([CLS]), for the pooler.</summary>
    public int[] FirstTokenRows() => (int[])_offsets.Clone();
}
