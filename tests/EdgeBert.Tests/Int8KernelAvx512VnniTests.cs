using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using EdgeBert.Kernels;

namespace EdgeBert.Tests;

/// <summary>The emitted AVX-512 VNNI kernel: its bytes decode to the intended instructions (checked by GNU objdump
/// where it is installed), and the path is the best wherever it is supported. Its products are checked with every
/// other path's in <see cref="Int8GemmTests"/>.</summary>
public class Int8KernelAvx512VnniTests
{
    /// <summary>The k loop, from its first instruction (at 0xa0) to its backward jump, as objdump prints it.</summary>
    const string Loop = """
        lea r9,[rdx+rdx*2]
        lea r10,[rsi+rdx*4]
        test edi,edi
        je 0x191
        vmovdqu32 zmm0,ZMMWORD PTR [rcx]
        vmovdqu32 zmm1,ZMMWORD PTR [rcx+0x40]
        vmovdqu32 zmm2,ZMMWORD PTR [rcx+0x80]
        vpbroadcastd zmm3,DWORD PTR [rsi]
        vpdpbusd zmm8,zmm3,zmm0
        vpdpbusd zmm9,zmm3,zmm1
        vpdpbusd zmm10,zmm3,zmm2
        vpbroadcastd zmm4,DWORD PTR [rsi+rdx*1]
        vpdpbusd zmm11,zmm4,zmm0
        vpdpbusd zmm12,zmm4,zmm1
        vpdpbusd zmm13,zmm4,zmm2
        vpbroadcastd zmm5,DWORD PTR [rsi+rdx*2]
        vpdpbusd zmm14,zmm5,zmm0
        vpdpbusd zmm15,zmm5,zmm1
        vpdpbusd zmm16,zmm5,zmm2
        vpbroadcastd zmm6,DWORD PTR [rsi+r9*1]
        vpdpbusd zmm17,zmm6,zmm0
        vpdpbusd zmm18,zmm6,zmm1
        vpdpbusd zmm19,zmm6,zmm2
        vpbroadcastd zmm7,DWORD PTR [r10]
        vpdpbusd zmm20,zmm7,zmm0
        vpdpbusd zmm21,zmm7,zmm1
        vpdpbusd zmm22,zmm7,zmm2
        vpbroadcastd zmm3,DWORD PTR [r10+rdx*1]
        vpdpbusd zmm23,zmm3,zmm0
        vpdpbusd zmm24,zmm3,zmm1
        vpdpbusd zmm25,zmm3,zmm2
        vpbroadcastd zmm4,DWORD PTR [r10+rdx*2]
        vpdpbusd zmm26,zmm4,zmm0
        vpdpbusd zmm27,zmm4,zmm1
        vpdpbusd zmm28,zmm4,zmm2
        vpbroadcastd zmm5,DWORD PTR [r10+r9*1]
        vpdpbusd zmm29,zmm5,zmm0
        vpdpbusd zmm30,zmm5,zmm1
        vpdpbusd zmm31,zmm5,zmm2
        add rsi,0x4
        add r10,0x4
        add rcx,0xc0
        dec edi
        jne 0xa0
        """;

    [Fact]
    public void EmittedBytesDisassembleToTheIntendedKernel()
    {
        var expected = new List<string>();
        for (int z = 8; z < 32; z++) expected.Add($"vpxord zmm{z},zmm{z},zmm{z}");
        expected.AddRange(Loop.Split('\n'));
        for (int z = 8; z < 32; z++)
            expected.Add($"vmovdqu32 ZMMWORD PTR [r8{(z == 8 ? "" : $"+0x{64 * (z - 8):x}")}],zmm{z}");
        expected.AddRange(["vzeroupper", "ret"]);

        var actual = Disassemble(Int8KernelAvx512Vnni.Emit());
        if (actual is null) return;
        Assert.Equal(expected, actual);
    }

    /// <summary>The encoder's other operand forms, which the kernel does not use today: disp32, rbp/r13 and
    /// rsp/r12 bases, r12 as index, scale 8, negative disp8, a byte immediate, high registers, a short jump.</summary>
    [Fact]
    public void EncoderOperandFormsDisassembleAsWritten()
    {
        var e = new X64Emitter();
        int top = e.Position;
        e.Vmovdqu32Load(31, new Mem(Gpr.R13, Disp: 64 * 200));
        e.Vmovdqu32Store(new Mem(Gpr.Rbp, Gpr.R12, 8, -64), 16);
        e.VpbroadcastdLoad(17, new Mem(Gpr.Rsp, Disp: 12));
        e.VpbroadcastdLoad(2, new Mem(Gpr.R12, Disp: 6));
        e.Vpdpbusd(7, 24, 15);
        e.Lea(Gpr.R11, new Mem(Gpr.R13, Gpr.R8, 8));
        e.Add(Gpr.R15, -8);
        e.Test32(Gpr.R9, Gpr.Rax);
        e.Dec32(Gpr.R14);
        e.JnzBack(top);
        string[] expected =
        [
            "vmovdqu32 zmm31,ZMMWORD PTR [r13+0x3200]",
            "vmovdqu32 ZMMWORD PTR [rbp+r12*8-0x40],zmm16",
            "vpbroadcastd zmm17,DWORD PTR [rsp+0xc]",
            "vpbroadcastd zmm2,DWORD PTR [r12+0x6]",
            "vpdpbusd zmm7,zmm24,zmm15",
            "lea r11,[r13+r8*8+0x0]",
            "add r15,0xfffffffffffffff8",
            "test r9d,eax",
            "dec r14d",
            "jne 0x0",
        ];
        var actual = Disassemble(e.ToArray());
        if (actual is null) return;
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void IsTheBestPathWhereSupported()
    {
        bool vnni512 = OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64
            && Avx512BW.IsSupported && (X86Base.CpuId(7, 0).Ecx & (1 << 11)) != 0;
        Assert.Equal(vnni512, Int8Paths.IsSupported(Int8Path.Avx512Vnni));
        if (vnni512) Assert.Equal(Int8Path.Avx512Vnni, Int8Paths.Best);
        // EDGEBERT_INT8=avxvnni still selects the 256-bit kernel.
        if (AvxVnni.IsSupported) Assert.Equal(Int8Path.AvxVnni, Int8Paths.FromSetting("avxvnni"));
    }

    /// <summary>The instructions objdump decodes from code, or null when objdump is not installed.</summary>
    static List<string>? Disassemble(byte[] code)
    {
        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(file, code);
            var start = new ProcessStartInfo("objdump")
            {
                ArgumentList = { "-D", "-b", "binary", "-mi386:x86-64", "-M", "intel", file },
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            Process process;
            try { process = Process.Start(start)!; }
            catch (Win32Exception) { return null; }
            string output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            Assert.Equal(0, process.ExitCode);
            // "   a0:\t62 f1 7e 48 6f 01    \tvmovdqu32 zmm0,..."; a line without a third field continues the bytes.
            return output.Split('\n')
                .Select(line => line.Split('\t'))
                .Where(fields => fields.Length == 3 && fields[0].TrimEnd().EndsWith(':'))
                .Select(fields => string.Join(' ', fields[2].Split(' ', StringSplitOptions.RemoveEmptyEntries)))
                .ToList();
        }
        finally { File.Delete(file); }
    }
}
