namespace EdgeBert.Autograd;

/// <summary>Float buffers recycled from one training step to the next: a step allocates about a
/// gigabyte of activations and gradients (BERT-mini, 4096 tokens), and fresh arrays cost a page fault
/// per 4 KB plus the zeroing. A tape made on an arena takes its tensors' data, their gradients and its
/// backward scratch from it; making the next tape on the same arena hands all of them out again, so
/// tensors of a previous step must not be read after that (the caller keeps only numbers it copied out).</summary>
public sealed class TensorArena
{
    Dictionary<int, Stack<float[]>> _free = [];
    Dictionary<int, Stack<float[]>> _lent = [];

    /// <summary>Makes every buffer lent so far free again. Buffers that stayed free through a whole
    /// step are dropped, so the arena holds at most one step's worth as batch shapes change.</summary>
    internal void Recycle()
    {
        foreach (var (length, buffers) in _free)
            if (_lent.TryGetValue(length, out var lent))
                while (buffers.Count > 0) lent.Push(buffers.Pop());
        (_free, _lent) = (_lent, []);
    }

    /// <summary>A buffer of exactly <paramref name="length"/> floats, zeroed if <paramref name="clear"/>
    /// (otherwise its contents are stale and the caller overwrites all of it).</summary>
    internal float[] Rent(int length, bool clear)
    {
        float[] buffer;
        if (_free.TryGetValue(length, out var free) && free.Count > 0)
        {
            buffer = free.Pop();
            if (clear) Array.Clear(buffer);
        }
        else buffer = new float[length];
        if (!_lent.TryGetValue(length, out var lent)) _lent[length] = lent = new Stack<float[]>();
        lent.Push(buffer);
        return buffer;
    }
}
