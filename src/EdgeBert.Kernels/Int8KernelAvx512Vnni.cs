using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace EdgeBert.Kernels;

/// <summary>AVX-512 VNNI micro-kernel: an 8 x 48 tile in 24 zmm accumulators, 512-bit vpdpbusd (u8 x s8 -> i32) on
/// the shifted-activation layout of <see cref="VnniDot"/>. .NET exposes no 512-bit vpdpbusd on CPUs
/// without AVX10, so the kernel is machine code emitted once at start-up into its own page, written, then made
/// read + execute (never writable and executable at once). Linux x64 only: Windows passes arguments in other
/// registers and keeps xmm6-15, so there the path reports unsupported. Any failure leaves the path
/// unsupported, and <see cref="Int8Paths.Best"/> falls back to AvxVnni.</summary>
internal static unsafe class Int8KernelAvx512Vnni
{
    public const int MR = 8, NR = 48;
    const int Columns = NR / 16;
    const int FirstAccumulator = 8;

    /// <summary>Null unless this CPU and OS run it and the code page was made executable. SuppressGCTransition:
    /// a tile is a few microseconds of arithmetic that neither blocks nor calls back.</summary>
    static readonly delegate* unmanaged[SuppressGCTransition]<int, byte*, nint, byte*, int*, void> s_entry =
        CpuSupports() ? Install(Emit()) : null;

    public static bool IsSupported => s_entry != null;

    /// <summary>The descriptor's managed entry point: calls the emitted code.</summary>
    public static void Compute(int steps, byte* a, nint lda, byte* b, int* acc) => s_entry(steps, a, lda, b, acc);

    /// <summary>CPUID.(EAX=7, ECX=0):ECX bit 11 is AVX512_VNNI; Avx512BW.IsSupported says the OS saves zmm state
    /// (and honours DOTNET_EnableAVX512=0).</summary>
    static bool CpuSupports() =>
        OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64
        && Avx512BW.IsSupported && (X86Base.CpuId(7, 0).Ecx & (1 << 11)) != 0;

    /// <summary>The kernel for the System V call (steps: edi, a: rsi, lda: rdx, b: rcx, acc: r8). Only
    /// caller-saved registers: rsi, rcx, rdi, r9, r10 and zmm0-31 (B in zmm0-2, broadcasts of A rotating through
    /// zmm3-7, accumulator (row r, column block j) in zmm 8 + 3r + j).</summary>
    internal static byte[] Emit()
    {
        var e = new X64Emitter();
        for (int c = FirstAccumulator; c < FirstAccumulator + MR * Columns; c++) e.Vpxord(c, c, c);
        e.Lea(Gpr.R9, new Mem(Gpr.Rdx, Gpr.Rdx, 2));
        e.Lea(Gpr.R10, new Mem(Gpr.Rsi, Gpr.Rdx, 4));
        e.Test32(Gpr.Rdi, Gpr.Rdi);
        int skipLoop = e.JzForward();
        int loop = e.Position;
        for (int j = 0; j < Columns; j++) e.Vmovdqu32Load(j, new Mem(Gpr.Rcx, Disp: 64 * j));
        for (int r = 0; r < MR; r++)
        {
            int x = 3 + r % 5;
            e.VpbroadcastdLoad(x, RowOfA(r));
            for (int j = 0; j < Columns; j++) e.Vpdpbusd(FirstAccumulator + Columns * r + j, x, j);
        }
        e.Add(Gpr.Rsi, 4);
        e.Add(Gpr.R10, 4);
        e.Add(Gpr.Rcx, 4 * NR);
        e.Dec32(Gpr.Rdi);
        e.JnzBack(loop);
        e.BindHere(skipLoop);
        for (int r = 0; r < MR; r++)
            for (int j = 0; j < Columns; j++)
                e.Vmovdqu32Store(new Mem(Gpr.R8, Disp: 4 * (NR * r + 16 * j)), FirstAccumulator + Columns * r + j);
        e.Vzeroupper();
        e.Ret();
        return e.ToArray();
    }

    /// <summary>Row r of A from rsi (rows 0-3) or r10 = rsi + 4 lda (rows 4-7), with rdx = lda and
    /// r9 = 3 lda.</summary>
    static Mem RowOfA(int r) => (r % 4) switch
    {
        0 => new Mem(r < 4 ? Gpr.Rsi : Gpr.R10),
        1 => new Mem(r < 4 ? Gpr.Rsi : Gpr.R10, Gpr.Rdx),
        2 => new Mem(r < 4 ? Gpr.Rsi : Gpr.R10, Gpr.Rdx, 2),
        _ => new Mem(r < 4 ? Gpr.Rsi : Gpr.R10, Gpr.R9),
    };

    const int ProtRead = 1, ProtWrite = 2, ProtExec = 4, MapPrivate = 0x02, MapAnonymous = 0x20;

    /// <summary>Copies code into fresh pages mapped read + write, then switches them to read + execute; they stay
    /// for the life of the process. Null when libc or either call fails.</summary>
    static delegate* unmanaged[SuppressGCTransition]<int, byte*, nint, byte*, int*, void> Install(byte[] code)
    {
        try
        {
            nuint length = (nuint)((code.Length + Environment.SystemPageSize - 1) / Environment.SystemPageSize
                                   * Environment.SystemPageSize);
            void* page = Mmap(null, length, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
            if (page == (void*)-1) return null;
            code.CopyTo(new Span<byte>(page, code.Length));
            if (Mprotect(page, length, ProtRead | ProtExec) != 0)
            {
                _ = Munmap(page, length);
                return null;
            }
            return (delegate* unmanaged[SuppressGCTransition]<int, byte*, nint, byte*, int*, void>)page;
        }
        catch (DllNotFoundException) { return null; }
        catch (EntryPointNotFoundException) { return null; }
    }

    [DllImport("libc", EntryPoint = "mmap")]
    static extern void* Mmap(void* address, nuint length, int protection, int flags, int fd, nint offset);

    [DllImport("libc", EntryPoint = "mprotect")]
    static extern int Mprotect(void* address, nuint length, int protection);

    [DllImport("libc", EntryPoint = "munmap")]
    static extern int Munmap(void* address, nuint length);
}
