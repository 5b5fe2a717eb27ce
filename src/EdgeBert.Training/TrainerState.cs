using EdgeBert.Autograd;

namespace EdgeBert.Training;

/// <summary>Where a training run stands, saved beside the weights for --resume: stage, epoch and batch,
/// the running loss, the best dev metric, the dropout RNG and the AdamW moments.</summary>
public sealed class TrainerState
{
    const int Magic = 0x45425453; // "EBTS"
    const int Version = 2;

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

    public void Write(string path)
    {
        using var writer = new BinaryWriter(File.Create(path));
        writer.Write(Magic); writer.Write(Version);
        writer.Write(Stage); writer.Write(Epoch); writer.Write(Batch);
        writer.Write(LossSum); writer.Write(LossCount); writer.Write(BestMetric);
        writer.Write(RngState ?? 0);
        writer.Write(TotalSteps);
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
            if (reader.ReadInt32() != Magic || reader.ReadInt32() != Version)
                throw new InvalidDataException($"{path}: not an EdgeBert trainer state (or from another version)");
            var state = new TrainerState
            {
                Stage = reader.ReadInt32(), Epoch = reader.ReadInt32(), Batch = reader.ReadInt32(),
                LossSum = reader.ReadDouble(), LossCount = reader.ReadInt64(), BestMetric = reader.ReadDouble(),
                RngState = reader.ReadUInt64(), TotalSteps = reader.ReadInt64(),
            };
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
