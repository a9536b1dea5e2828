"""The rANS coders' steps, 16 lanes at a time in vector registers: numba intrinsics that
emit LLVM vector IR (gathers, in-register table lookups, masked stores, an expanding load
and a compressing store) for `entropy_kernels.decode_pairs_vector` and
`encode_pairs_vector`.

The interleaved rANS lanes of one step are independent but for the word stream, which they
share in lane order: a lane that renormalises takes (decoder) or puts (encoder) the next
word. So 16 lanes' table lookups are vector operations, their words one expanding load
(vpexpandw) or one compressing store (vpcompressw), where the scalar loops spend ~25
instructions a lane. LLVM's loop vectoriser does not find this (the word pointer is a prefix
count), so the vector code is written here. Measured in one process, pair mode, bits=4,
d=512 (AMD Zen 5, one thread): a 1 M-coordinate decode 0.77 -> 0.45-0.47 ms, 25.6 M: 24 ->
16-18 ms; a 1 M encode (rounding included) 1.13-1.30 -> 0.80-0.96 ms, its rANS part per
chunk 0.14 -> 0.062 ms; 25.6 M: 30-37 -> 25-32 ms.

Gathers cost about 1.5 cycles an element on AMD Zen 5, so they are kept to what needs
them. A table of <= 256 uint32 entries (frequency and first slot by pair code or symbol) is
read by eight two-register permutes and a tree of selects (`_lookup256`): the encoder step
took 0.71 ns a pair with a gather there, 0.48 ns with the permutes. A pair's two signed
levels come from in-register permutes of a 16-float table (a pair's symbol split into its
two coordinates' symbols by float32 arithmetic), not from two more gathers; with them the
decoder step was no faster than the scalar loop. Only the decoder's slot -> symbol table
(2^15 entries) is gathered.

Where this runs: `FAST`, when the host has AVX-512 F, BW and VBMI2 (and SIMNET_VECTOR is
not 0 in the environment). Elsewhere LLVM would emulate the masked operations element by
element, slower than the scalar loop, so callers take that instead. Both give the same
bytes and values: the same integer and float32 operations in the same order.

Arguments are raw addresses (`arr.ctypes.data` plus a byte offset); the caller checks every
range before a call. Lane j of a group is valid for j < `valid`: invalid lanes load nothing
but their own state, store nothing but that state unchanged, and take no word.
"""

from __future__ import annotations

import os

from . import jit

__all__ = ["FAST", "decode_pairs16", "renorm16", "encode_pairs16"]

FAST = False

if jit.numba is not None:
    import llvmlite.binding as llvm
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    _features = llvm.get_host_cpu_features()
    FAST = (all(_features.get(f, False) for f in ("avx512f", "avx512bw", "avx512vbmi2"))
            and os.environ.get("SIMNET_VECTOR", "1") != "0")

    N = 16
    I1, I8, I16, I32, I64 = (ir.IntType(1), ir.IntType(8), ir.IntType(16), ir.IntType(32),
                             ir.IntType(64))
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

    def _masked_load(builder, elt, ptr, mask):
        """<n x elt> from ptr where mask[j] (n = mask's lanes), else 0; nothing read there."""
        n = mask.type.count
        fn = _fn(builder, f"llvm.masked.load.v{n}i{elt.width}.p0", _vec(elt, n),
                 [PTR, I32, _vec(I1, n), _vec(elt, n)])
        return builder.call(fn, [ptr, ir.Constant(I32, 1), mask, ir.Constant(_vec(elt, n), None)])

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

    def _count(builder, mask):
        """How many lanes of the <n x i1> mask are set, as an i64 (one popcount)."""
        bits = ir.IntType(mask.type.count)
        ctpop = _fn(builder, f"llvm.ctpop.i{bits.width}", bits, [bits])
        return builder.zext(builder.call(ctpop, [builder.bitcast(mask, bits)]), I64)

    def _compress(builder, v, mask, fill):
        """The lanes of v where mask is set, moved to the front in order, then fill's lanes
        (vpcompressd / vpcompressw in a register)."""
        n, elt = v.type.count, v.type.element
        fn = _fn(builder, f"llvm.experimental.vector.compress.v{n}i{elt.width}", v.type,
                 [v.type, _vec(I1, n), v.type])
        return builder.call(fn, [v, mask, fill])

    def _addr(builder, a):
        return builder.inttoptr(a, PTR)

    @intrinsic
    def decode_pairs16(typingctx, x, symtab, fc, values, out, sa, sb, cut, valid, a, inv_a,
                       syms, slot_bits, low):
        """One rANS decoding step of 16 lanes of pair symbols (`entropy_kernels.decode`'s,
        the same operations): returns the bits of the lanes that must renormalise.

        x: the lanes' uint32 states (updated); symtab: uint8 [M + 3], slot -> symbol (read
        as 32 bits at byte `slot`, masked: a gather of 32-bit lanes); fc: uint32 [256] by
        symbol, frequency | first slot << 16 (`_lookup256`, not a gather); values: float32
        [16], a coordinate's signed level by its own symbol (a pair's symbol is a·first +
        second, a <= 15: split in float32, exactly for symbols < 256, then two in-register
        permutes, not two more gathers: on AMD Zen a gather costs ~1.5 cycles an
        element). out: lane j's two coordinates at out[2j], out[2j + 1], times sa for
        j < cut, else sb. syms: uint32 [16], the lanes' symbols. slot_bits, low: the
        format's log2 M and L (`entropy_kernels`' constants: LLVM folds them once this is
        inlined into its kernel)."""
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
            e = _lookup256(builder, fcp, s)
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

    def _lookup256(builder, table, idx):
        """table[idx[j]] for a uint32 table of 256 entries and idx < 256: eight two-register
        permutes (vpermi2d: 32 entries by idx's low 5 bits) and a tree of selects by its
        bits 5, 6 and 7: cheaper than a 16-lane gather on AMD Zen 5 (the encoder's step
        took 0.71 ns a pair with the gather, 0.48 ns with this)."""
        perm = _fn(builder, "llvm.x86.avx512.vpermi2var.d.512", _vec(I32),
                   [_vec(I32), _vec(I32), _vec(I32)])
        parts = []
        for i in range(8):
            lo = _load(builder, builder.gep(table, [ir.Constant(I64, 32 * i)], source_etype=I32),
                       _vec(I32))
            hi = _load(builder, builder.gep(table, [ir.Constant(I64, 32 * i + 16)],
                                            source_etype=I32), _vec(I32))
            parts.append(builder.call(perm, [lo, idx, hi]))
        for bit in (32, 64, 128):
            on = builder.icmp_unsigned("!=", builder.and_(idx, _const(builder, I32, bit)),
                                       _const(builder, I32, 0))
            parts = [builder.select(on, parts[i + 1], parts[i]) for i in range(0, len(parts), 2)]
        return parts[0]

    @intrinsic
    def encode_pairs16(typingctx, x, keys, fc, valid, shift, end, slot_bits):
        """One rANS encoding step of 16 lanes of pair symbols (`entropy_kernels._push`'s,
        the same integers): returns how many renormalisation words it stored.

        x: the lanes' uint32 states (updated); keys: the lanes' 32 level keys (uint8, two a
        lane, 2·valid of them read); fc: uint32 by pair code key0 << shift | key1, the
        code's frequency f | its first slot << 16. A lane renormalises when x >> (32 -
        slot_bits) >= f (x >= f << 17 without overflow at f = 2^15); its low 16 bits go out,
        big-endian, the lanes' words packed in ascending lane order just below byte address
        `end` (vpcompressw). x // f from a float32 estimate and one correction (below;
        the tests check the estimate's bound for every f). The table lookup is
        `_lookup256`'s: it depends on the keys alone, off the states' chain."""
        sig = types.int64(types.intp, types.intp, types.intp, types.int64, types.int64,
                          types.intp, types.int64)

        def codegen(context, builder, signature, args):
            xp, kp, fcp, valid, shift, endp, sbits = args
            xp, kp, fcp = [_addr(builder, p) for p in (xp, kp, fcp)]
            ok = _below(builder, builder.trunc(valid, I32))
            twice = builder.trunc(builder.shl(valid, valid.type(1)), I32)
            kv = _masked_load(builder, I8, kp, _below(builder, twice, 2 * N))
            undef = ir.Constant(_vec(I8, 2 * N), ir.Undefined)
            k0, k1 = [builder.zext(builder.shuffle_vector(kv, undef, ir.Constant(
                _vec(I32), list(range(parity, 2 * N, 2)))), _vec(I32)) for parity in (0, 1)]
            code = builder.or_(builder.shl(k0, _splat(builder, builder.trunc(shift, I32))), k1)
            e = _lookup256(builder, fcp, code)
            f = builder.and_(e, _const(builder, I32, 0xFFFF))
            f = builder.select(ok, f, _const(builder, I32, 1))  # (no 0/0 in idle lanes)
            c = builder.lshr(e, _const(builder, I32, 16))
            xv = _load(builder, xp, _vec(I32))
            top = builder.lshr(xv, _splat(builder, builder.trunc(
                builder.sub(sbits.type(32), sbits), I32)))
            need = builder.and_(builder.icmp_unsigned(">=", top, f), ok)
            count = _count(builder, need)
            w = _bswap16(builder, builder.trunc(xv, _vec(I16)))
            compress = _fn(builder, f"llvm.masked.compressstore.v{N}i16", ir.VoidType(),
                           [_vec(I16), PTR, _vec(I1)])
            builder.call(compress, [w, _addr(builder, builder.sub(endp, builder.shl(
                count, count.type(1)))), need])
            xs = builder.select(need, builder.lshr(xv, _const(builder, I32, 16)), xv)
            # x // f: a float32 estimate q (within 0.03 of x / f < 2^17, so off by at most
            # one), then the remainder r = x - q·f in [-f, 2f) corrects it (mod 2^32: a
            # negative r wraps to >= 2^31)
            inv = builder.fdiv(_const(builder, F32, 1.0), builder.uitofp(f, _vec(F32)))
            quo = builder.fptoui(builder.fmul(builder.uitofp(xs, _vec(F32)), inv), _vec(I32))
            rem = builder.sub(xs, builder.mul(quo, f))
            over = builder.icmp_unsigned(">=", rem, _const(builder, I32, 1 << 31))
            under = builder.and_(builder.icmp_unsigned(">=", rem, f), builder.not_(over))
            quo = builder.sub(builder.add(quo, builder.zext(under, _vec(I32))),
                              builder.zext(over, _vec(I32)))
            zero = _const(builder, I32, 0)
            rem = builder.add(builder.sub(rem, builder.select(under, f, zero)),
                              builder.select(over, f, zero))
            # x' = (x // f)·M + x mod f + c
            xn = builder.add(builder.add(builder.shl(quo, _splat(builder, builder.trunc(
                sbits, I32))), rem), c)
            _store(builder, builder.select(ok, xn, xv), xp)
            return count

        return sig, codegen

else:  # the kernels that call these never run without numba
    decode_pairs16 = renorm16 = encode_pairs16 = None
