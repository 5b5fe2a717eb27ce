using System.Globalization;

namespace EdgeBert.Model;

/// <summary>Lowercasing and canonical normalization on code points, from tables generated out of
/// Python's unicodedata (UnicodeTables.g.cs). .NET's own string.Normalize does nothing to non-ASCII
/// text under InvariantGlobalization (NativeAOT's default) and its casing follows ICU, so the
/// tokenizer uses these instead and behaves the same in every deployment.</summary>
static partial class UnicodeText
{
    const int HangulFirst = 0xAC00, HangulCount = 11172, JamoLFirst = 0x1100, JamoVFirst = 0x1161, JamoTFirst = 0x11A7,
              JamoVCount = 21, JamoTCount = 28, JamoLCount = 19;

    /// <summary>UTF-16 to code points; a lone surrogate stays as its own (category Cs) value.</summary>
    public static List<int> CodePoints(ReadOnlySpan<char> s)
    {
        var result = new List<int>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
                result.Add(char.ConvertToUtf32(c, s[++i]));
            else
                result.Add(c);
        }
        return result;
    }

    public static string ToUtf16(IEnumerable<int> codePoints)
    {
        var sb = new System.Text.StringBuilder();
        foreach (int cp in codePoints)
        {
            if (cp < 0x10000) sb.Append((char)cp);
            else sb.Append(char.ConvertFromUtf32(cp));
        }
        return sb.ToString();
    }

    public static UnicodeCategory Category(int cp) => CharUnicodeInfo.GetUnicodeCategory(cp);

    /// <summary>Python's str.lower() applied to each code point on its own (the Final_Sigma rule needs
    /// context that HuggingFace's character-wise lowercasing never gives it).</summary>
    public static void AppendLower(List<int> destination, int cp)
    {
        int i = LowerKeys.BinarySearch(cp);
        if (i < 0) { destination.Add(cp); return; }
        for (int k = LowerStarts[i]; k < LowerStarts[i + 1]; k++) destination.Add(LowerValues[k]);
    }

    public static List<int> Lower(List<int> text)
    {
        var result = new List<int>(text.Count);
        foreach (int cp in text) AppendLower(result, cp);
        return result;
    }

    public static int CombiningClass(int cp)
    {
        int i = CombiningKeys.BinarySearch(cp);
        return i < 0 ? 0 : CombiningValues[i];
    }

    /// <summary>Canonical decomposition (NFD): full decomposition, then marks reordered by combining class.</summary>
    public static List<int> Nfd(List<int> text)
    {
        var result = new List<int>(text.Count + 8);
        foreach (int cp in text)
        {
            int s = cp - HangulFirst;
            if (s >= 0 && s < HangulCount)
            {
                result.Add(JamoLFirst + s / (JamoVCount * JamoTCount));
                result.Add(JamoVFirst + s % (JamoVCount * JamoTCount) / JamoTCount);
                if (s % JamoTCount != 0) result.Add(JamoTFirst + s % JamoTCount);
                continue;
            }
            int i = DecompositionKeys.BinarySearch(cp);
            if (i < 0) { result.Add(cp); continue; }
            for (int k = DecompositionStarts[i]; k < DecompositionStarts[i + 1]; k++)
                result.Add(DecompositionValues[k]);
        }
        // Canonical ordering: a stable sort by combining class inside each run of non-starters, one run at a
        // time, so a text of a million marks costs n log n and not n^2.
        for (int start = 0; start < result.Count;)
        {
            if (CombiningClass(result[start]) == 0) { start++; continue; }
            int end = start + 1;
            while (end < result.Count && CombiningClass(result[end]) != 0) end++;
            if (end - start > 1) SortRun(result, start, end);
            start = end;
        }
        return result;
    }

    /// <summary>Sorts text[start..end) by combining class; the position in the low bits of the key keeps
    /// the sort stable.</summary>
    static void SortRun(List<int> text, int start, int end)
    {
        var keys = new long[end - start];
        for (int i = 0; i < keys.Length; i++) keys[i] = (long)CombiningClass(text[start + i]) << 32 | (uint)i;
        Array.Sort(keys);
        var run = text.GetRange(start, keys.Length);
        for (int i = 0; i < keys.Length; i++) text[start + i] = run[(int)(keys[i] & uint.MaxValue)];
    }

    /// <summary>Canonical composition (NFC): NFD, then each mark joins the last starter unless blocked.</summary>
    public static List<int> Nfc(List<int> text)
    {
        var d = Nfd(text);
        var result = new List<int>(d.Count);
        int starter = -1;   // index in result of the last starter
        int lastClass = 0;  // combining class of the last character appended
        foreach (int cp in d)
        {
            int cc = CombiningClass(cp);
            // A mark joins the starter when nothing between them has class 0 or a class >= its own.
            bool reachable = starter >= 0 && (result.Count - 1 == starter || (lastClass != 0 && lastClass < cc));
            if (reachable && TryCompose(result[starter], cp, out int composed))
            {
                result[starter] = composed;
                continue;
            }
            if (cc == 0) starter = result.Count;
            lastClass = cc;
            result.Add(cp);
        }
        return result;
    }

    static bool TryCompose(int first, int second, out int composed)
    {
        int l = first - JamoLFirst, v = second - JamoVFirst;
        if (l >= 0 && l < JamoLCount && v >= 0 && v < JamoVCount)
        {
            composed = HangulFirst + (l * JamoVCount + v) * JamoTCount;
            return true;
        }
        int s = first - HangulFirst, t = second - JamoTFirst;
        if (s >= 0 && s < HangulCount && s % JamoTCount == 0 && t > 0 && t < JamoTCount)
        {
            composed = first + t;
            return true;
        }
        composed = 0;
        var firsts = CompositionFirst;
        int lo = 0, hi = firsts.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            int c = firsts[mid] != first ? firsts[mid].CompareTo(first) : CompositionSecond[mid].CompareTo(second);
            if (c == 0) { composed = CompositionResult[mid]; return true; }
            if (c < 0) lo = mid + 1; else hi = mid - 1;
        }
        return false;
    }
}
