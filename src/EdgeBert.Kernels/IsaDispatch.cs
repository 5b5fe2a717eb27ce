using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace EdgeBert.Kernels;

/// <summary>One call of a kernel, written once against <see cref="ISimd{TV}"/> for the vector paths, with its
/// scalar twin for <see cref="Isa.Scalar"/>. A ref struct holding the call's spans and results.</summary>
internal interface IIsaWork
{
    void RunVector<TV, S>() where TV : struct where S : struct, ISimd<TV>;
    void RunScalar();
}

/// <summary>The one place where a path becomes a vector type, so no kernel repeats the switch.</summary>
internal static class IsaDispatch
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Run<TWork>(Isa? isa, ref TWork work) where TWork : IIsaWork, allows ref struct
    {
        switch (IsaSelector.Resolve(isa))
        {
            case Isa.Avx512: work.RunVector<Vector512<float>, Simd512>(); break;
            case Isa.Avx2: work.RunVector<Vector256<float>, Simd256>(); break;
            case Isa.Vector128: work.RunVector<Vector128<float>, Simd128>(); break;
            default: work.RunScalar(); break;
        }
    }
}
