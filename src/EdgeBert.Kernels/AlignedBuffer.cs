namespace EdgeBert.Kernels;

/// <summary>A growable float buffer whose first element sits on a 64-byte boundary (one cache line, one
/// Vector512). A GC array starts wherever the heap puts it, and when rows of a multiple of 16 floats start
/// mid-line every full-width load and store of them straddles two cache lines. Pinned, so the GC never
/// moves it off the boundary.</summary>
public sealed unsafe class AlignedBuffer
{
    const int Alignment = 64;
    float[] _storage = [];
    int _offset;

    /// <summary>Usable floats; grows with <see cref="EnsureCapacity"/>, never shrinks.</summary>
    public int Length { get; private set; }

    /// <summary>Makes room for at least <paramref name="length"/> floats; the old contents are not kept.</summary>
    public void EnsureCapacity(int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        if (length <= Length) return;
        int pad = Alignment / sizeof(float);
        _storage = GC.AllocateUninitializedArray<float>(checked(length + pad), pinned: true);
        fixed (float* start = _storage)
            _offset = (int)((Alignment - (nuint)start % Alignment) % Alignment / sizeof(float));
        Length = length;
    }

    /// <summary>The first <paramref name="length"/> floats of the buffer in <paramref name="slot"/>, created or
    /// grown as needed: per-thread scratch is a [ThreadStatic] slot passed here.</summary>
    public static Span<float> Scratch(ref AlignedBuffer? slot, int length)
    {
        slot ??= new AlignedBuffer();
        slot.EnsureCapacity(length);
        return slot.AsSpan(0, length);
    }

    /// <summary>The whole buffer.</summary>
    public Span<float> AsSpan() => _storage.AsSpan(_offset, Length);
    /// <summary>The buffer from <paramref name="start"/> on.</summary>
    public Span<float> AsSpan(int start) => AsSpan()[start..];
    /// <summary><paramref name="length"/> values from <paramref name="start"/>.</summary>
    public Span<float> AsSpan(int start, int length) => AsSpan().Slice(start, length);

    /// <summary>The whole buffer as a span.</summary>
    public static implicit operator Span<float>(AlignedBuffer buffer) => buffer.AsSpan();
    /// <summary>The whole buffer as a read-only span.</summary>
    public static implicit operator ReadOnlySpan<float>(AlignedBuffer buffer) => buffer.AsSpan();
}
