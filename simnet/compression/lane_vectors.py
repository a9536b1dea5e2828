"""The rANS decoder's step, 16 lanes at a time in vector registers: numba intrinsics that
emit LLVM vector IR (gathers, masked stores, an expanding load) for
`entropy_kernels.decode_pairs_vector`.

The interleaved rANS lanes of one step are independent but for the word stream, which they
read in lane order: a lane that renormalises takes the next word. So 16 lanes' table lookups
are two gathers, their words one expanding load (vpexpandw), where the scalar loop spends
~25 instructions a lane. LLVM's loop vectoriser does not find this (the word pointer is a
prefix count), so the vector code is written here. Measured in one process, pair mode,
bits=4, d=512 (AMD Zen 5, one thread): a 1 M-coordinate decode 0.77 -> 0.50 ms; 25.6 M:
24 -> 16-18 ms.

Gathers cost about 1.5 cycles an element on AMD Zen: a pair's two signed levels therefore
come from in-register permutes of a 16-float table (a pair's symbol split into its two
coordinates' symbols by float32 arithmetic), not from two more gathers; with them the
vector step was no faster than the scalar loop.

Where this runs: `FAST`, when the host has AVX-512 F, BW and VBMI2. Elsewhere LLVM would
emulate the masked operations element by element, slower than the scalar loop, so callers
take that instead. Both give the same values: the same float32 operations in the same order.

Arguments are raw addresses (`arr.ctypes.data` plus a byte offset); the caller checks every
range before a call. Lane j of a group is valid for j < `valid`: invalid lanes load nothing
but their own state, store nothing but that state unchanged, and take no word.
"""

from __future__ import annotations

from . import jit

__all__ = ["FAST", "decode_pairs16", "renorm16"]

FAST = False

if jit.numba is not None:
    import llvmlite.binding as llvm
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    _features = llvm.get_host_cpu_features()
    FAST = all(_features.get(f, False) for f in ("avx512f", "avx512bw", "avx512vbmi2"))

    N = 16
    I1, I16, I32, I64 = ir.IntType(1), ir.IntType(16), ir.IntType(32), ir.IntType(64)
    F32 = ir.FloatType()
    PTR = ir.PointerType()

    def _vec(t, n=N):
        return ir.VectorType(t, n)

    def _name(t) -> str:
        return {I16: "i16", I32: "i32", F32: "f32"}[t]

    _SIZE = {"i16": 2, "i32": 4, "f32": 4}  # bytes, by `_name`

    def _fn(builder, name, ret, args):
        return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ret, args), name)

    def _splat(builder, value, n=N):
        v = builder.insert_element(ir.Constant(_vec(value.type, n), ir.Undefined), value,
                                   ir.Constant(I32, 0))
        return builder.shuffle_vector(v, ir.Constant(_vec(value.type, n), ir.Undefined),
                                      ir.Constant(_vec(I32, n), [0] * n))

    def _const(builder, t, value, n=N):
        return ir.Constant(_vec(t, n), [value] * n)

    def _lanes(n=N):
        return ir.Constant(_vec(I32, n), list(range(n)))

    def _below(builder, count, n=N):
        """<n x i1>: lane j < count (count: i32)."""
        return builder.icmp_unsigned("<", _lanes(n), _splat(builder, count, n))

    def _gather(builder, elt, base, idx, mask, step=None):
        """elt-typed base[idx[j]] where mask[j], else 0 (idx: <N x i32>); with step (a
        narrower type), the elt read at byte offset idx[j]·sizeof(step)."""
        n = idx.type.count
        ptrs = builder.gep(base, [idx], source_etype=step or elt)
        ptrs.type = _vec(PTR, n)  # (llvmlite types a vector GEP as a scalar pointer)
        fn = _fn(builder, f"llvm.masked.gather.v{n}{_name(elt)}.v{n}p0", _vec(elt, n),
                 [_vec(PTR, n), I32, _vec(I1, n), _vec(elt, n)])
        return builder.call(fn, [ptrs, ir.Constant(I32, 1 if step else _SIZE[_name(elt)]), mask,
                                 ir.Constant(_vec(elt, n), None)])

    def _masked_store(builder, value, ptr, mask):
        n, elt = value.type.count, value.type.element
        fn = _fn(builder, f"llvm.masked.store.v{n}{_name(elt)}.p0", ir.VoidType(),
                 [value.type, PTR, I32, _vec(I1, n)])
        builder.call(fn, [value, ptr, ir.Constant(I32, 1), mask])

    def _load(builder, ptr, t):
        inst = builder.load(ptr, typ=t)
        inst.align = 1
        return inst

    def _store(builder, value, ptr):
        inst = builder.store(value, ptr)
        inst.align = 1

    def _bswap16(builder, v):
        fn = _fn(builder, f"llvm.bswap.v{N}i16", _vec(I16), [_vec(I16)])
        return builder.call(fn, [v])

    def _mask_bits(builder, mask):
        """A <16 x i1> as the low 16 bits of an i64."""
        return builder.zext(builder.bitcast(mask, I16), I64)

    def _bits_mask(builder, bits):
        return builder.bitcast(builder.trunc(bits, I16), _vec(I1))

    def _addr(builder, a):
        return builder.inttoptr(a, PTR)

    @intrinsic
    def decode_pairs16(typingctx, x, symtab, fc, values, out, sa, sb, cut, valid, a, inv_a,
                       syms, slot_bits, low):
        """One rANS decoding step of 16 lanes of pair symbols (`entropy_kernels.decode`'s,
        the same operations): returns the bits of the lanes that must renormalise.

        x: the lanes' uint32 states (updated); symtab: uint8 [M + 3], slot -> symbol (read
        as 32 bits at byte `slot`, masked: a gather of 32-bit lanes); fc: uint32 by symbol,
        frequency | first slot << 16; values: float32 [16], a coordinate's signed level by
        its own symbol (a pair's symbol is a·first + second, a <= 15: split in float32,
        exactly for symbols < 256, then two in-register permutes, not two more gathers:
        on AMD Zen a gather costs ~1.5 cycles an element). out: lane j's two coordinates
        at out[2j], out[2j + 1], times sa for j < cut, else sb. syms: uint32 [16], the
        lanes' symbols. slot_bits, low: the format's log2 M and L (`entropy_kernels`'
        constants: LLVM folds them once this is inlined into its kernel)."""
        sig = types.int64(types.intp, types.intp, types.intp, types.intp, types.intp,
                          types.float32, types.float32, types.int64, types.int64,
                          types.int64, types.float32, types.intp, types.int64, types.int64)

        def codegen(context, builder, signature, args):
            xp, symp, fcp, valp, outp, sa, sb, cut, valid, a, inv_a, symsp, sbits, low = args
            xp, symp, fcp, valp, outp, symsp = [
                _addr(builder, p) for p in (xp, symp, fcp, valp, outp, symsp)]
            ok = _below(builder, builder.trunc(valid, I32))
            xv = _load(builder, xp, _vec(I32))
            sbits = _splat(builder, builder.trunc(sbits, I32))
            slot = builder.and_(xv, builder.sub(builder.shl(_const(builder, I32, 1), sbits),
                                                _const(builder, I32, 1)))
            s = _gather(builder, I32, symp, slot, ok, step=ir.IntType(8))
            s = builder.and_(s, _const(builder, I32, 0xFF))
            _store(builder, s, symsp)
            e = _gather(builder, I32, fcp, s, ok)
            f = builder.and_(e, _const(builder, I32, 0xFFFF))
            first_slot = builder.lshr(e, _const(builder, I32, 16))
            xn = builder.mul(f, builder.lshr(xv, sbits))
            xn = builder.sub(builder.add(xn, slot), first_slot)
            _store(builder, builder.select(ok, xn, xv), xp)
            low = _splat(builder, builder.trunc(low, I32))
            need = builder.and_(builder.icmp_unsigned("<", xn, low), ok)
            # first = trunc((s + 0.5)·fl(1/a)): (s + 0.5)/a is >= 1/(2a) from an integer
            first = builder.fptoui(builder.fmul(
                builder.fadd(builder.uitofp(s, _vec(F32)), _const(builder, F32, 0.5)),
                _splat(builder, inv_a)), _vec(I32))
            second = builder.sub(s, builder.mul(first, _splat(builder, builder.trunc(a, I32))))
            table = _load(builder, valp, _vec(F32))
            perm = _fn(builder, "llvm.x86.avx512.permvar.sf.512", _vec(F32),
                       [_vec(F32), _vec(I32)])
            scale = builder.select(_below(builder, builder.trunc(cut, I32)),
                                   _splat(builder, sa), _splat(builder, sb))
            r0 = builder.fmul(builder.call(perm, [table, first]), scale)
            r1 = builder.fmul(builder.call(perm, [table, second]), scale)
            both = builder.shuffle_vector(r0, r1, ir.Constant(  # r0[0], r1[0], r0[1], ...
                _vec(I32, 2 * N), [j // 2 + (j % 2) * N for j in range(2 * N)]))
            twice = builder.trunc(builder.shl(valid, valid.type(1)), I32)
            _masked_store(builder, both, outp, _below(builder, twice, 2 * N))
            return _mask_bits(builder, need)

        return sig, codegen

    @intrinsic
    def renorm16(typingctx, x, words, bits):
        """x[j] = x[j] << 16 | the next word (byte-swapped) for each lane j whose bit is set,
        the words taken in lane order from `words` (popcount(bits) of them)."""
        sig = types.void(types.intp, types.intp, types.int64)

        def codegen(context, builder, signature, args):
            xp, wp = _addr(builder, args[0]), _addr(builder, args[1])
            mask = _bits_mask(builder, args[2])
            fn = _fn(builder, f"llvm.masked.expandload.v{N}i16", _vec(I16),
                     [PTR, _vec(I1), _vec(I16)])
            w = builder.call(fn, [wp, mask, ir.Constant(_vec(I16), None)])
            w = builder.zext(_bswap16(builder, w), _vec(I32))
            xv = _load(builder, xp, _vec(I32))
            xn = builder.or_(builder.shl(xv, _const(builder, I32, 16)), w)
            _store(builder, builder.select(mask, xn, xv), xp)

        return sig, codegen

else:  # the kernels that call these never run without numba
    decode_pairs16 = renorm16 = None
