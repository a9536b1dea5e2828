"""The `elias` encoder's coding step in vector registers: numba intrinsics emitting LLVM
vector IR, for `elias_fused`. A bucket's piece is coded in two steps:
- `list64`: the nonzero keys of 64 coordinates and their positions, compressed to the front
  of four groups of 16 lanes (vpcompressd in a register) and stored one after another;
- `code_listed64`: the (gap, sign, level) triples of up to 64 listed nonzeros, as four
  groups of 16 lanes.
Per group of 16 listed nonzeros:
1. each gap is the difference of a position to the lane before (the first group's first
   to the previous nonzero's);
2. ω(gap) and ω(level) come from arithmetic, not tables: for 2 <= v < 2^16 of bit length
   b, ω(v) = ω(b - 1) without its final 0, then v's b bits, then 0 (a 16-entry prefix
   table, one in-register permute; ω(1) = 0); the triple is ω(gap), the sign, ω(level);
   for grids of <= 16 points (keys < 32) the sign and ω(level) are one field, read from a
   32-entry table in two registers by one permute (`code_listed64_keyed`);
3. the triples are placed into the group's bit string from bit 0: each lane's start is
   the exclusive prefix sum of the widths, its code split into the parts falling into its
   first and its second 32-bit word; a word is the sum of its lanes' parts (their bits are
   disjoint), taken as differences of prefix sums at the last lane of each word;
4. the string is appended after the stream's pending bits by one funnel shift per word
   (vpshrdvd), the complete words stored by one masked store (byte-swapped: the stream's
   bytes are MSB first), the incomplete one carried.
The four groups' steps 1-3 are independent, so the CPU overlaps them; only step 4 is
chained (in-register permutes cost ~5-6 cycles of latency on AMD Zen 5: one group at a
time left most of the vector units idle).

Listing first codes 64 nonzeros a call whatever the density, where compressing inside the
coding step coded 64 coordinates (the previous design, kept for dense blocks only; sparse
ones went to the scalar coder's list). Measured in one process, 1 M coordinates, bits=4,
d=512, one thread, coding from keys (`code_rows`) / rounding and coding (`encode_rows`):
qsgd (sparse) 0.80 -> 0.36 / 1.19 -> 0.71 ms, qsgdinf 0.93 -> 0.74 / 1.28 -> 1.02 ms,
nuqsgd 0.93 -> 0.74 / 1.44 -> 1.18 ms; the scalar coder 0.89 / 1.48 / 1.42 from keys.

A call whose triples need what the vector code does not do (a gap or level >= 2^16, a
triple longer than 32 bits, a group longer than MOST_BITS bits) stores nothing and says
so (RARE): the caller codes that range again with the scalar coder. Both give the same
bits.

Where this runs: `FAST` (AVX-512 F, BW, CD and VBMI2, as `lane_vectors.FAST` plus CD).
Elsewhere `code_listed64` declines every call, so the kernels that call it still compile.
"""

from __future__ import annotations

import numpy as np

from . import jit
from . import lane_vectors as LV
from .coding import omega_encode

__all__ = ["FAST", "GROUPS", "LANES", "MOST_BITS", "RARE", "KEYS", "list64", "code_listed64",
           "code_listed64_keyed", "key_fields", "prefix_table"]

FAST = False
GROUPS = 4  # groups of 16 lanes a call
LANES = 16 * GROUPS  # coordinates (list64) or listed nonzeros (code_listed64) a call
MOST_BITS = 449  # a group's longest string: with <= 31 pending bits, <= 15 words complete
RARE = 1 << 13  # the result's bit that says "code these with the scalar coder"
KEYS = 32  # keys `code_listed64_keyed` takes from its table: grids of <= 16 points


def key_fields() -> np.ndarray:
    """uint32 [KEYS]: entry k = 2·level + sign (level >= 1) holds the sign bit followed by
    ω(level), as one field, << 8 | its length in bits (<= 8); 0 for level 0. For grids of
    <= KEYS / 2 points (`code_listed64_keyed`)."""
    level = np.arange(KEYS) >> 1
    sign = np.arange(KEYS) & 1
    code, length = omega_encode(np.maximum(level, 1))
    fields = ((sign << length) | code.astype(np.int64)) << 8 | (length + 1)
    return np.where(level > 0, fields, 0).astype(np.uint32)


def prefix_table() -> list[int]:
    """Entry n < 16, for the values of bit length n + 1: ω(n) without its final 0, shifted
    8 bits up, | |ω(n)| (the bits ω(v) has beyond v's own and its final 0); 0 for n = 0
    (ω(1) is a single 0, which the caller selects)."""
    code, length = omega_encode(np.arange(1, 16))
    return [0] + [int(c >> 1) << 8 | int(n) for c, n in zip(code, length)]


if jit.numba is not None and LV.FAST and LV._features.get("avx512cd", False):
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    FAST = True
    N = 16
    I1, I16, I32, I64 = ir.IntType(1), ir.IntType(16), ir.IntType(32), ir.IntType(64)
    _vec, _fn, _splat, _const, _lanes, _below, _compress = (
        LV._vec, LV._fn, LV._splat, LV._const, LV._lanes, LV._below, LV._compress)
    _PREFIX = prefix_table()

    def _i32(value):
        return ir.Constant(I32, value)

    def _up(builder, v, s, fill=None):
        """Lane j gets v[j - s]; fill (default 0) for j < s."""
        other = fill if fill is not None else ir.Constant(v.type, None)
        return builder.shuffle_vector(v, other, ir.Constant(
            _vec(I32), [N + j if j < s else j - s for j in range(N)]))

    def _prefix_sum(builder, v):
        """Inclusive prefix sums of 16 lanes (mod 2^32)."""
        for s in (1, 2, 4, 8):
            v = builder.add(v, _up(builder, v, s))
        return v

    def _permute(builder, table, idx):
        fn = _fn(builder, "llvm.x86.avx512.permvar.si.512", _vec(I32), [_vec(I32), _vec(I32)])
        return builder.call(fn, [table, idx])

    def _permute2(builder, tables, idx):
        """Entry idx[j] < 32 of the 32-entry table held as two <16 x i32> (vpermi2d)."""
        fn = _fn(builder, "llvm.x86.avx512.vpermi2var.d.512", _vec(I32), [_vec(I32)] * 3)
        return builder.call(fn, [tables[0], idx, tables[1]])

    def _shift(builder, name, v, count):
        """vpsllvd / vpsrlvd: a count >= 32 gives 0 (LLVM's own shifts would be poison)."""
        fn = _fn(builder, f"llvm.x86.avx512.{name}.d.512", _vec(I32), [_vec(I32), _vec(I32)])
        return builder.call(fn, [v, count])

    def _omega(builder, v):
        """ω(v) of 1 <= v < 2^16 in each lane: (code, length in bits)."""
        ctlz = _fn(builder, "llvm.ctlz.v16i32", _vec(I32), [_vec(I32), I1])
        bits = builder.sub(_const(builder, I32, 32), builder.call(ctlz, [v, ir.Constant(I1, 0)]))
        e = _permute(builder, ir.Constant(_vec(I32), _PREFIX),
                     builder.sub(bits, _const(builder, I32, 1)))
        length = builder.add(builder.and_(e, _const(builder, I32, 255)), bits)
        prefix = builder.lshr(e, _const(builder, I32, 8))
        code = builder.shl(builder.or_(builder.shl(prefix, bits), v), _const(builder, I32, 1))
        one = builder.icmp_unsigned(">", v, _const(builder, I32, 1))
        return builder.select(one, code, _const(builder, I32, 0)), length

    def _code_group(builder, at, key, used, before, fields=None):
        """The bit string of up to 16 triples, lane j's the nonzero key[j] at position at[j]
        (lanes not `used` ignored); before: lane 0's previous nonzero position, the same
        origin as at's (i32); fields: None, or `key_fields` as two <16 x i32> (keys <
        KEYS: the sign-and-level field one permute, not ω by arithmetic). Returns (words
        from bit 0, its length in bits, rare as i1)."""
        zero = _const(builder, I32, 0)
        gap = builder.sub(at, _up(builder, at, 1, _splat(builder, before)))
        gcode, glen = _omega(builder, gap)
        if fields is None:
            level = builder.lshr(key, _const(builder, I32, 1))
            lcode, llen = _omega(builder, level)
            width = builder.add(builder.add(glen, llen), _const(builder, I32, 1))
            sign = builder.and_(key, _const(builder, I32, 1))
            code = builder.or_(builder.shl(builder.or_(builder.shl(
                gcode, _const(builder, I32, 1)), sign), llen), lcode)
            wide = builder.or_(gap, level)
        else:
            field = _permute2(builder, fields, key)
            flen = builder.and_(field, _const(builder, I32, 255))
            width = builder.add(glen, flen)
            code = builder.or_(builder.shl(gcode, flen), builder.lshr(field, _const(builder,
                                                                                  I32, 8)))
            wide = gap
        wide = builder.icmp_unsigned(">=", wide, _const(builder, I32, 1 << 16))
        long = builder.icmp_unsigned(">", width, _const(builder, I32, 32))
        rare = builder.and_(builder.or_(wide, long), used)
        code, width = builder.select(used, code, zero), builder.select(used, width, zero)
        # lane j's code starts at bit `start` = the widths before it: its part in that word
        # (hi) and the rest in the next (lo; both shifts give 0 where a part is empty)
        ends = _prefix_sum(builder, width)
        start = builder.sub(ends, width)
        word = builder.lshr(start, _const(builder, I32, 5))
        t = builder.add(builder.and_(start, _const(builder, I32, 31)), width)
        hi = builder.or_(_shift(builder, "psllv", code, builder.sub(_const(builder, I32, 32), t)),
                         _shift(builder, "psrlv", code, builder.sub(t, _const(builder, I32, 32))))
        lo = _shift(builder, "psllv", code, builder.sub(_const(builder, I32, 64), t))
        # word w = its lanes' hi parts + the lo parts of the lanes of word w - 1 (disjoint
        # bits: sums are ORs), each a difference of prefix sums at a word's last lane; the
        # compress's fill repeats the total, so words past the last get 0
        next_word = builder.shuffle_vector(word, _const(builder, I32, -1), ir.Constant(
            _vec(I32), list(range(1, N + 1))))
        last_lane = builder.icmp_unsigned("!=", word, next_word)
        top = ir.Constant(_vec(I32), [N - 1] * N)
        sums = []
        for part in (hi, lo):
            p = _prefix_sum(builder, part)
            c = _compress(builder, p, last_lane, builder.shuffle_vector(p, p, top))
            sums.append(builder.sub(c, _up(builder, c, 1)))
        words = builder.add(sums[0], _up(builder, sums[1], 1))
        bits = builder.extract_element(ends, _i32(N - 1))
        any_rare = builder.icmp_unsigned("!=", builder.bitcast(rare, I16), ir.Constant(I16, 0))
        rare = builder.or_(any_rare, builder.icmp_unsigned(">", bits, _i32(MOST_BITS)))
        return words, bits, rare

    def _append(builder, words, bits, carry, nacc, out, skip):
        """Append a group's string (words, bits) after the stream's nacc < 32 pending bits
        (the top of `carry`): its complete words stored at `out` (an address; none if
        skip). Returns (words stored, the new carry, the new nacc)."""
        fshr = _fn(builder, "llvm.fshr.v16i32", _vec(I32), [_vec(I32)] * 3)
        shifted = builder.call(fshr, [_up(builder, words, 1), words, _splat(builder, nacc)])
        shifted = builder.or_(shifted, builder.insert_element(
            ir.Constant(_vec(I32), None), carry, _i32(0)))
        total = builder.add(bits, nacc)
        full = builder.lshr(total, _i32(5))
        carry = builder.extract_element(_permute(builder, shifted, _splat(builder, full)), _i32(0))
        bswap = _fn(builder, f"llvm.bswap.v{N}i32", _vec(I32), [_vec(I32)])
        store = builder.and_(_below(builder, full), _splat(builder, builder.not_(skip)))
        LV._masked_store(builder, builder.call(bswap, [shifted]), LV._addr(builder, out), store)
        return full, carry, builder.and_(total, _i32(31))

    def _group_keys(builder, data, at, g, left):
        """Keys at + 16g .. of the array at `data` (lanes < left; zero-extended to i32)."""
        kt = data.type.pointee
        ptr = builder.bitcast(builder.gep(data, [builder.add(at, ir.Constant(I64, 16 * g))]),
                              LV.PTR)
        keys = LV._masked_load(builder, kt, ptr, _below(builder, left))
        return builder.zext(keys, _vec(I32)) if kt.width < 32 else keys

    def _left(builder, valid, g):
        """Lanes of group g among `valid` (i32): valid - 16g clamped to 0 (16 and more: all)."""
        left = builder.sub(valid, _i32(16 * g))
        return builder.select(builder.icmp_signed("<", left, _i32(0)), _i32(0), left)

    def _append_groups(builder, groups, carry, nacc, out):
        """Append the groups' strings [(words, bits, rare)] in order (none if one is rare):
        returns the i64 result words stored | nacc << 8 | RARE | carry << 32."""
        rare = groups[0][2]
        for group in groups[1:]:
            rare = builder.or_(rare, group[2])
        carry, nacc = builder.trunc(carry, I32), builder.trunc(nacc, I32)
        out = builder.ptrtoint(LV._addr(builder, out), I64)
        stored = _i32(0)
        for words, bits, _ in groups:
            at_word = builder.add(out, builder.shl(builder.zext(stored, I64), ir.Constant(I64, 2)))
            full, carry, nacc = _append(builder, words, bits, carry, nacc, at_word, rare)
            stored = builder.add(stored, full)
        stored = builder.select(rare, _i32(0), stored)
        result = builder.or_(builder.zext(stored, I64),
                             builder.shl(builder.zext(nacc, I64), ir.Constant(I64, 8)))
        result = builder.or_(result, builder.shl(builder.zext(rare, I64), ir.Constant(I64, 13)))
        return builder.or_(result, builder.shl(builder.zext(carry, I64), ir.Constant(I64, 32)))

    def _unsigned_keys(keys):
        """Whether keys types as a 1-D contiguous array of unsigned integers."""
        return (isinstance(keys, types.Array) and keys.ndim == 1 and keys.layout == "C"
                and isinstance(keys.dtype, types.Integer) and not keys.dtype.signed)

    @intrinsic
    def list64(typingctx, keys, at, valid, first, positions, listed):
        """List the nonzeros of keys[at : at + valid] (valid <= LANES; keys 2·level + sign, a
        1-D contiguous unsigned array): their positions, first + their index from `at`, and
        their keys go, in order, to the int32 addresses `positions` and `listed` onward.
        Each group of 16 is compressed in a register and stored whole (compressing stores
        to memory are microcoded on some AMD cores), so the 16 entries after the count may
        be overwritten. Returns the count."""
        if not _unsigned_keys(keys):
            return None
        sig = types.int64(keys, types.int64, types.int64, types.int64, types.intp, types.intp)

        def codegen(context, builder, signature, args):
            array, at, valid, first, pos_out, key_out = args
            data = context.make_array(signature.args[0])(context, builder, array).data
            valid, first = builder.trunc(valid, I32), builder.trunc(first, I32)
            zero = _const(builder, I32, 0)
            count = ir.Constant(I64, 0)
            for g in range(GROUPS):
                left = _left(builder, valid, g)
                keys = _group_keys(builder, data, at, g, left)
                nonzero = builder.and_(builder.icmp_unsigned("!=", keys, zero),
                                       _below(builder, left))
                pos = builder.add(_lanes(), _splat(builder, builder.add(first, _i32(16 * g))))
                offset = builder.shl(count, ir.Constant(I64, 2))
                for value, base in ((pos, pos_out), (keys, key_out)):
                    LV._store(builder, _compress(builder, value, nonzero, zero),
                              LV._addr(builder, builder.add(base, offset)))
                count = builder.add(count, LV._count(builder, nonzero))
            return count

        return sig, codegen

    def _code_listed_ir(builder, pos_in, key_in, valid, last, out, carry, nacc, fields=None):
        """`code_listed64`'s IR (fields: `_code_group`'s)."""
        valid, last = builder.trunc(valid, I32), builder.trunc(last, I32)
        groups = []
        for g in range(GROUPS):
            left = _left(builder, valid, g)
            used = _below(builder, left)
            pos, key = [LV._masked_load(builder, I32, LV._addr(builder, builder.add(
                base, ir.Constant(I64, 64 * g))), used) for base in (pos_in, key_in)]
            groups.append(_code_group(builder, pos, key, used, last, fields))
            last = builder.extract_element(pos, _i32(N - 1))  # (the next group's, if any)
        return _append_groups(builder, groups, carry, nacc, out)

    @intrinsic
    def code_listed64(typingctx, positions, listed, valid, last, out, carry, nacc):
        """Code the triples of listed nonzeros (`list64`'s) after the stream's nacc < 32
        pending bits, which sit at the top of the 32-bit `carry`: the valid <= LANES
        entries at the int32 addresses `positions` (increasing) and `listed` (their keys
        2·level + sign, nonzero); last: the previous nonzero's position (the same origin,
        smaller). The complete words go to the address `out` onward (uint32, byte-swapped),
        at most 15·GROUPS of them. Returns the words stored | new nacc << 8 | new carry <<
        32, or RARE with nothing stored (and the rest meaningless) where a triple needs
        what this does not do; then no word is counted either."""
        sig = types.int64(types.intp, types.intp, types.int64, types.int64, types.intp,
                          types.int64, types.int64)

        def codegen(context, builder, signature, args):
            return _code_listed_ir(builder, *args)

        return sig, codegen

    @intrinsic
    def code_listed64_keyed(typingctx, positions, listed, valid, last, out, carry, nacc,
                            fields):
        """`code_listed64` for keys < KEYS (grids of <= 16 points), each key's sign and
        level field read from `key_fields()` at the address `fields` (one permute: one
        process, 1 M coordinates at 4 bits, one thread, `code_rows` 6-8% faster)."""
        sig = types.int64(types.intp, types.intp, types.int64, types.int64, types.intp,
                          types.int64, types.int64, types.intp)

        def codegen(context, builder, signature, args):
            table = [LV._load(builder, LV._addr(builder, builder.add(
                args[7], ir.Constant(I64, 64 * h))), _vec(I32)) for h in range(2)]
            return _code_listed_ir(builder, *args[:7], table)

        return sig, codegen

else:
    @jit.inline
    def list64(keys, at, valid, first, positions, listed):
        """Without the vector step: lists nothing but reports `valid` entries, which
        `code_listed64` then declines (callers check FAST and make no call)."""
        return valid

    @jit.inline
    def code_listed64(positions, listed, valid, last, out, carry, nacc):
        """Without the vector step: declines every call."""
        return RARE

    @jit.inline
    def code_listed64_keyed(positions, listed, valid, last, out, carry, nacc, fields):
        """Without the vector step: declines every call."""
        return RARE
