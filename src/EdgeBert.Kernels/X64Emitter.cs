using System.Buffers.Binary;

namespace EdgeBert.Kernels;

/// <summary>General-purpose registers in their x64 encoding order.</summary>
internal enum Gpr { Rax, Rcx, Rdx, Rbx, Rsp, Rbp, Rsi, Rdi, R8, R9, R10, R11, R12, R13, R14, R15 }

/// <summary>A memory operand [base + index * scale + disp].</summary>
internal readonly record struct Mem(Gpr Base, Gpr? Index = null, int Scale = 1, int Disp = 0);

/// <summary>A minimal x64 encoder for exactly the instructions of <see cref="Int8KernelAvx512Vnni"/>: EVEX-encoded
/// 512-bit vpxord, vpbroadcastd, vpdpbusd and vmovdqu32, and the few integer instructions of its loop. Vector
/// registers are numbered 0-31 (zmm).</summary>
internal sealed class X64Emitter
{
    readonly List<byte> _code = [];

    public int Position => _code.Count;

    public byte[] ToArray() => [.. _code];

    /// <summary>vpxord zmm dst, zmm src1, zmm src2 (EVEX.512.66.0F.W0 EF /r).</summary>
    public void Vpxord(int dst, int src1, int src2) => EvexRegisters(0xEF, 1, 1, dst, src1, src2);

    /// <summary>vpdpbusd zmm acc, zmm u8, zmm s8 (EVEX.512.66.0F38.W0 50 /r).</summary>
    public void Vpdpbusd(int acc, int unsigned8, int signed8) => EvexRegisters(0x50, 2, 1, acc, unsigned8, signed8);

    /// <summary>vpbroadcastd zmm dst, m32 (EVEX.512.66.0F38.W0 58 /r; tuple1 scalar, disp8 scaled by 4).</summary>
    public void VpbroadcastdLoad(int dst, Mem source) => EvexMemory(0x58, 2, 1, dst, source, 4);

    /// <summary>vmovdqu32 zmm dst, m512 (EVEX.512.F3.0F.W0 6F /r; full vector, disp8 scaled by 64).</summary>
    public void Vmovdqu32Load(int dst, Mem source) => EvexMemory(0x6F, 1, 2, dst, source, 64);

    /// <summary>vmovdqu32 m512, zmm src (EVEX.512.F3.0F.W0 7F /r).</summary>
    public void Vmovdqu32Store(Mem destination, int src) => EvexMemory(0x7F, 1, 2, src, destination, 64);

    public void Vzeroupper() => Emit(0xC5, 0xF8, 0x77);

    public void Ret() => Emit(0xC3);

    /// <summary>lea r64, [mem] (REX.W 8D /r).</summary>
    public void Lea(Gpr dst, Mem source)
    {
        Rex(true, (int)dst, source);
        Emit(0x8D);
        ModRmMemory((int)dst, source, 1);
    }

    /// <summary>add r64, imm (REX.W 83 /0 ib, or 81 /0 id when imm does not fit a byte).</summary>
    public void Add(Gpr dst, int imm)
    {
        bool shortForm = imm is >= sbyte.MinValue and <= sbyte.MaxValue;
        Emit(RexByte(true, 0, 0, (int)dst), shortForm ? (byte)0x83 : (byte)0x81, ModRm(3, 0, (int)dst));
        if (shortForm) Emit((byte)imm);
        else Emit32(imm);
    }

    /// <summary>test r32, r32 (85 /r).</summary>
    public void Test32(Gpr left, Gpr right)
    {
        if (left >= Gpr.R8 || right >= Gpr.R8) Emit(RexByte(false, (int)right, 0, (int)left));
        Emit(0x85, ModRm(3, (int)right, (int)left));
    }

    /// <summary>dec r32 (FF /1).</summary>
    public void Dec32(Gpr register)
    {
        if (register >= Gpr.R8) Emit(RexByte(false, 0, 0, (int)register));
        Emit(0xFF, ModRm(3, 1, (int)register));
    }

    /// <summary>jnz to an earlier position (rel8 when it reaches, else rel32).</summary>
    public void JnzBack(int target)
    {
        int rel8 = target - (Position + 2);
        if (rel8 >= sbyte.MinValue) Emit(0x75, (byte)rel8);
        else
        {
            Emit(0x0F, 0x85);
            Emit32(target - (Position + 4));
        }
    }

    /// <summary>jz rel32 to a later position; returns the fix-up for <see cref="BindHere"/>.</summary>
    public int JzForward()
    {
        Emit(0x0F, 0x84);
        Emit32(0);
        return Position;
    }

    /// <summary>Points the jump ending at fixUp to the current position.</summary>
    public void BindHere(int fixUp)
    {
        Span<byte> rel = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(rel, Position - fixUp);
        for (int i = 0; i < 4; i++) _code[fixUp - 4 + i] = rel[i];
    }

    /// <summary>EVEX 512-bit, W0, no masking: reg = dst, vvvv = src1, rm = src2, all vector registers.</summary>
    void EvexRegisters(byte opcode, int map, int pp, int reg, int vvvv, int rm)
    {
        // The rm register's bit 4 rides in EVEX.X when rm is a register.
        Evex(map, pp, reg, vvvv, (rm >> 4) & 1, (rm >> 3) & 1);
        Emit(opcode, ModRm(3, reg, rm));
    }

    /// <summary>EVEX 512-bit, W0, no masking, no vvvv: reg and a memory operand whose disp8 is scaled by n.</summary>
    void EvexMemory(byte opcode, int map, int pp, int reg, Mem memory, int n)
    {
        Evex(map, pp, reg, 0, Bit3(memory.Index), Bit3(memory.Base));
        Emit(opcode);
        ModRmMemory(reg, memory, n);
    }

    /// <summary>62, then P0 = R X B R' 0 mmm, P1 = W vvvv 1 pp, P2 = z L'L b V' aaa; R, X, B, R', vvvv and V' are
    /// stored inverted. L'L = 10 selects 512 bits.</summary>
    void Evex(int map, int pp, int reg, int vvvv, int x, int b)
    {
        int p0 = (~reg >> 3 & 1) << 7 | (~x & 1) << 6 | (~b & 1) << 5 | (~reg >> 4 & 1) << 4 | map;
        int p1 = (~vvvv & 15) << 3 | 1 << 2 | pp;
        int p2 = 2 << 5 | (~vvvv >> 4 & 1) << 3;
        Emit(0x62, (byte)p0, (byte)p1, (byte)p2);
    }

    void Rex(bool wide, int reg, Mem memory) =>
        Emit(RexByte(wide, reg, memory.Index is { } index ? (int)index : 0, (int)memory.Base));

    /// <summary>REX from the full register numbers whose bit 3 it carries: reg, SIB index, rm or base.</summary>
    static byte RexByte(bool wide, int reg, int index, int rm) =>
        (byte)(0x40 | (wide ? 8 : 0) | (reg >> 3 & 1) << 2 | (index >> 3 & 1) << 1 | (rm >> 3 & 1));

    static int Bit3(Gpr? register) => register is { } r ? (int)r >> 3 & 1 : 0;

    static byte ModRm(int mod, int reg, int rm) => (byte)(mod << 6 | (reg & 7) << 3 | (rm & 7));

    /// <summary>ModRM, SIB and displacement; EVEX compresses disp8 to disp / n when n divides it.</summary>
    void ModRmMemory(int reg, Mem memory, int n)
    {
        int low = (int)memory.Base & 7, disp = memory.Disp;
        bool disp8 = disp % n == 0 && disp / n is >= sbyte.MinValue and <= sbyte.MaxValue;
        // Base rbp/r13 with mod 00 means rip-relative or no base, so they always carry a displacement.
        int mod = disp == 0 && low != 5 ? 0 : disp8 ? 1 : 2;
        bool sib = memory.Index is not null || low == 4;
        Emit(ModRm(mod, reg, sib ? 4 : low));
        if (sib)
        {
            if (memory.Index == Gpr.Rsp) throw new ArgumentException("rsp cannot be an index");
            int index = memory.Index is { } i ? (int)i & 7 : 4;
            int scale = memory.Scale switch
            {
                1 => 0, 2 => 1, 4 => 2, 8 => 3,
                _ => throw new ArgumentException($"scale {memory.Scale}"),
            };
            Emit((byte)(scale << 6 | index << 3 | low));
        }
        if (mod == 1) Emit((byte)(sbyte)(disp / n));
        else if (mod == 2) Emit32(disp);
    }

    void Emit(params ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes) _code.Add(b);
    }

    void Emit32(int value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, value);
        Emit(bytes);
    }
}
