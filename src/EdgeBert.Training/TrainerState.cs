using EdgeBert.Autograd;
using EdgeBert.Model;

namespace EdgeBert.Training;

/// <summary>Where a training run stands, saved beside the weights for --resume: stage, epoch and batch,
/// the running loss, the best dev metric, the dropout RNG and the AdamW moments.</summary>
public sealed class TrainerState
{
    const int Magic = 0x45425453; // "EBTS"
    const int Version = 3;
    /// <summary>States written before the run's settings were stored; they resume without the settings check.
    /// </summary>
    const int VersionWithoutSettings = 2;

    public int Stage { get; set; }
    public int Epoch { get; set; }
    public int Batch { get; set; }
    public double LossSum { get; set; }
    public long LossCount { get; set; }
    public double BestMetric { get; set; } = double.NegativeInfinity;
    public ulong? RngState { get; set; }
    /// <summary>The length of a run whose step count was fixed from a time budget (pretraining).</summary>
    public long TotalSteps { get; set; }
    public AdamWState? Moments { get; set; }
    /// <summary>The options that decide what the run computes (flag name -> value), so a resume with other
    /// options is refused instead of silently continuing a different run; null in a version-2 state.</summary>
    public IReadOnlyDictionary<string, string>? Settings { get; set; }

    public void Write(string path)
    {
        AtomicFile.Write(path, stream =>
        {
            using var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true);
            WriteBody(writer);
        });
    }

    void WriteBody(BinaryWriter writer)
    {
        writer.Write(Magic); writer.Write(Version);
        writer.Write(Stage); writer.Write(Epoch); writer.Write(Batch);
        writer.Write(LossSum); writer.Write(LossCount); writer.Write(BestMetric);
        writer.Write(RngState ?? 0);
        writer.Write(TotalSteps);
        var settings = Settings ?? throw new InvalidOperationException("no run settings to save");
        writer.Write(settings.Count);
        foreach (var (key, value) in settings) { writer.Write(key); writer.Write(value); }
        var m = Moments ?? throw new InvalidOperationException("no optimizer state to save");
        writer.Write(m.Step);
        writer.Write(m.FirstMoments.Length);
        for (int i = 0; i < m.FirstMoments.Length; i++)
        {
            WriteArray(writer, m.FirstMoments[i]);
            WriteArray(writer, m.SecondMoments[i]);
        }
    }

    public static TrainerState Read(string path)
    {
        try
        {
            using var reader = new BinaryReader(File.OpenRead(path));
            int version = reader.ReadInt32() == Magic ? reader.ReadInt32() : -1;
            if (version is not (Version or VersionWithoutSettings))
                throw new InvalidDataException($"{path}: not an EdgeBert trainer state (or from another version)");
            var state = new TrainerState
            {
                Stage = reader.ReadInt32(), Epoch = reader.ReadInt32(), Batch = reader.ReadInt32(),
                LossSum = reader.ReadDouble(), LossCount = reader.ReadInt64(), BestMetric = reader.ReadDouble(),
                RngState = reader.ReadUInt64(), TotalSteps = reader.ReadInt64(),
            };
            if (version == Version) state.Settings = ReadSettings(reader);
            long step = reader.ReadInt64();
            int count = reader.ReadInt32();
            var first = new float[count][];
            var second = new float[count][];
            for (int i = 0; i < count; i++) { first[i] = ReadArray(reader); second[i] = ReadArray(reader); }
            state.Moments = new AdamWState(step, first, second);
            return state;
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException($"{path}: truncated trainer state");
        }
    }

    static Dictionary<string, string> ReadSettings(BinaryReader reader)
    {
        int count = reader.ReadInt32();
        if (count < 0 || count > 1000) throw new InvalidDataException("corrupt trainer state");
        var settings = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < count; i++) settings[reader.ReadString()] = reader.ReadString();
        return settings;
    }

    static void WriteArray(BinaryWriter writer, float[] values)
    {
        writer.Write(values.Length);
        foreach (var v in values) writer.Write(v);
    }

    static float[] ReadArray(BinaryReader reader)
    {
        int length = reader.ReadInt32();
        if (length < 0 || length > reader.BaseStream.Length / 4)
            throw new InvalidDataException("corrupt trainer state");
        var values = new float[length];
        for (int i = 0; i < length; i++) values[i] = reader.ReadSingle();
        return values;
    }
}
