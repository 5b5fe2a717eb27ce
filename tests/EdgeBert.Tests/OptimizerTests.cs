using EdgeBert.Autograd;
using EdgeBert.Model;

namespace EdgeBert.Tests;

public class OptimizerTests
{
    static ParameterGroup Group(string name, float lr, float decay, params Tensor[] parameters) =>
        new(name, parameters, lr, decay);

    static void SetGrad(Tensor t, params float[] grad)
    {
        t.ZeroGrad();
        grad.CopyTo(t.EnsureGrad(), 0);
    }

    [Fact]
    public void AdamWTwoStepsMatchTheFormulaWorkedByHand()
    {
        var decayed = Tensor.Parameter("w", [1f, -2f], 2);
        var undecayed = Tensor.Parameter("b", [3f], 1);
        var adam = new AdamW([Group("weights", 0.1f, 0.01f, decayed), Group("biases", 0.1f, 0f, undecayed)]);

        SetGrad(decayed, 0.5f, -0.25f);
        SetGrad(undecayed, 1f);
        adam.Update();
        // Step 1: m = 0.1 g, v = 0.001 g^2, so m/(1-0.9) = g and v/(1-0.999) = g^2: the update is
        // lr * g / (|g| + 1e-8) after the decoupled decay p *= 1 - lr * wd = 0.999.
        // w0 = 0.999 - 0.1 * 0.5 / 0.50000001 = 0.899000002, w1 = -1.998 + 0.1 * 0.25 / 0.25000001 = -1.898000004.
        // The bias group has no decay: b = 3 - 0.1 * 1 / 1.00000001 = 2.900000001.
        Assert.Equal(0.899000002f, decayed.Data[0], 1e-6f);
        Assert.Equal(-1.898000004f, decayed.Data[1], 1e-6f);
        Assert.Equal(2.9f, undecayed.Data[0], 1e-6f);

        SetGrad(decayed, 0.2f, 0.2f);
        SetGrad(undecayed, -1f);
        adam.Update();
        // Step 2 for w0: decay 0.899000002 * 0.999 = 0.898101002; m = 0.9 * 0.05 + 0.1 * 0.2 = 0.065,
        // v = 0.999 * 0.00025 + 0.001 * 0.04 = 0.00028975; m / (1 - 0.81) = 0.342105263,
        // v / (1 - 0.998001) = 0.144947474, sqrt = 0.380719693; w0 = 0.898101002 - 0.1 * 0.898573... = 0.808243484.
        // w1: decay -1.898000004 * 0.999 = -1.896102004; m = -0.0225 + 0.02 = -0.0025, v = 0.0000624375 + 0.00004
        // = 0.0001024375; m / 0.19 = -0.013157895, sqrt(v / 0.001999) = 0.226371...; w1 = -1.890289500.
        // b: m = 0.09 - 0.1 = -0.01, v = 0.000999 + 0.001 = 0.001999; m / 0.19 = -0.052631579,
        // sqrt(v / 0.001999) = 1; b = 2.900000001 + 0.1 * 0.052631579 = 2.905263159.
        Assert.Equal(0.808243484f, decayed.Data[0], 1e-6f);
        Assert.Equal(-1.890289500f, decayed.Data[1], 1e-6f);
        Assert.Equal(2.905263159f, undecayed.Data[0], 1e-6f);
        Assert.Equal(2, adam.Step);
    }

    [Fact]
    public void VectorBodyAndScalarTailAgreeBitForBit()
    {
        // 37 equal elements: some go through the SIMD body, the last ones through the scalar tail.
        var p = Tensor.Parameter("p", Enumerable.Repeat(0.7f, 37).ToArray(), 37);
        var adam = new AdamW([Group("g", 0.05f, 0.1f, p)]);
        foreach (float g in new[] { 0.3f, -1.7f, 0.011f })
        {
            SetGrad(p, Enumerable.Repeat(g, 37).ToArray());
            adam.Update();
        }
        Assert.All(p.Data, w => Assert.Equal(p.Data[0], w));
        Assert.NotEqual(0.7f, p.Data[0]);
    }

    [Fact]
    public void ParameterWithoutGradientIsLeftUntouched()
    {
        var unused = Tensor.Parameter("unused", [1f, 2f], 2);
        var adam = new AdamW([Group("all", 0.1f, 0.5f, unused)]);
        adam.Update();
        Assert.Equal([1f, 2f], unused.Data);
    }

    [Fact]
    public void ProjectionClipsGatesToTheUnitIntervalAndKeepsRankZero()
    {
        var gate = Tensor.Parameter("gate", [1f, 0.01f, 0.5f, 0.99f], 4);
        var adam = new AdamW([new ParameterGroup("gates", [gate], 0.1f, 0f, GateOps.ProjectGates)]);
        SetGrad(gate, 1f, 1f, 0f, -1f);
        adam.Update();
        // Rank 0 ([CLS], always kept) stays 1 although its gradient pushes it down; the second gate moves by -0.1
        // and the fourth by +0.1: both leave [0, 1] and are clipped back.
        Assert.Equal([1f, 0f, 0.5f, 1f], gate.Data);
    }

    [Fact]
    public void ResumeFromExportedStateIsBitIdentical()
    {
        var random = new Random(4);
        var grads = Enumerable.Range(0, 5).Select(_ => AutogradGradCheck.RandomArray(random, 7)).ToArray();
        var start = AutogradGradCheck.RandomArray(random, 7);
        var schedule = new LinearWarmupDecay(2, 5);

        var reference = Tensor.Parameter("p", (float[])start.Clone(), 7);
        var uninterrupted = new AdamW([Group("g", 0.01f, 0.1f, reference)]);
        for (int s = 0; s < 5; s++)
        {
            SetGrad(reference, grads[s]);
            uninterrupted.Update(schedule.Factor(uninterrupted.Step));
        }

        var first = Tensor.Parameter("p", (float[])start.Clone(), 7);
        var interrupted = new AdamW([Group("g", 0.01f, 0.1f, first)]);
        for (int s = 0; s < 3; s++)
        {
            SetGrad(first, grads[s]);
            interrupted.Update(schedule.Factor(interrupted.Step));
        }
        var saved = interrupted.ExportState();
        var resumedParameter = Tensor.Parameter("p", (float[])first.Data.Clone(), 7);
        var resumed = new AdamW([Group("g", 0.01f, 0.1f, resumedParameter)]);
        resumed.ImportState(saved);
        for (int s = 3; s < 5; s++)
        {
            SetGrad(resumedParameter, grads[s]);
            resumed.Update(schedule.Factor(resumed.Step));
        }
        Assert.Equal(reference.Data, resumedParameter.Data);
        Assert.Equal(5, resumed.Step);
    }

    [Fact]
    public void ImportRejectsStateOfOtherShapes()
    {
        var adam = new AdamW([Group("g", 0.1f, 0f, Tensor.Parameter("p", [1f, 2f], 2))]);
        Assert.Throws<ArgumentException>(() => adam.ImportState(new AdamWState(1, [new float[3]], [new float[3]])));
        Assert.Throws<ArgumentException>(() => adam.ImportState(new AdamWState(1, [], [])));
    }

    [Fact]
    public void ScheduleRisesLinearlyThenDecaysToZero()
    {
        var schedule = new LinearWarmupDecay(10, 110);
        Assert.Equal(0f, schedule.Factor(0));
        Assert.Equal(0.5f, schedule.Factor(5));
        Assert.Equal(1f, schedule.Factor(10));
        Assert.Equal(0.5f, schedule.Factor(60));
        Assert.Equal(0.01f, schedule.Factor(109), 1e-7f);
        Assert.Equal(0f, schedule.Factor(110));
        Assert.Equal(0f, schedule.Factor(500));
        var noWarmup = LinearWarmupDecay.FromFraction(0, 4);
        Assert.Equal([1f, 0.75f, 0.5f, 0.25f, 0f], Enumerable.Range(0, 5).Select(s => noWarmup.Factor(s)).ToArray());
        Assert.Equal(10, LinearWarmupDecay.FromFraction(0.1, 100).WarmupSteps);
    }

    [Fact]
    public void ClippingScalesTheGlobalNormToTheMaximum()
    {
        var a = Tensor.Parameter("a", [0f, 0f], 2);
        var b = Tensor.Parameter("b", [0f], 1);
        var untouched = Tensor.Parameter("c", [0f], 1); // no gradient: ignored
        SetGrad(a, 3f, 0f);
        SetGrad(b, 4f);
        float norm = GradientClipping.ClipByGlobalNorm([a, b, untouched], 1f);
        Assert.Equal(5f, norm);
        Assert.Equal(0.6f, a.Grad![0], 1e-6f);
        Assert.Equal(0.8f, b.Grad![0], 1e-6f);
        Assert.Null(untouched.Grad);

        var adam = new AdamW([Group("g", 0.1f, 0f, a, b)]);
        SetGrad(a, 3f, 0f);
        SetGrad(b, 4f);
        Assert.Equal(5f, adam.ClipGradientNorm(10f));
        Assert.Equal(3f, a.Grad![0]); // below the maximum: unchanged
    }

    [Fact]
    public void RngIsReproducibleFromItsState()
    {
        var rng = new Rng(7);
        rng.NextUInt64();
        var copy = new Rng(0) { State = rng.State };
        Assert.Equal(Enumerable.Range(0, 5).Select(_ => rng.NextUInt64()),
            Enumerable.Range(0, 5).Select(_ => copy.NextUInt64()));
        var counts = new int[3];
        for (int i = 0; i < 3000; i++) counts[rng.NextInt(3)]++;
        Assert.All(counts, c => Assert.InRange(c, 850, 1150)); // 1000 +- 5.8 sigma
    }
}
