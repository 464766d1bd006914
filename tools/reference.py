#!/usr/bin/python3
"""reference.py -- an independent reference implementation of what minfer computes.

Written in Python + NumPy from descriptions of the formats and models only (the GGUF
specification, docs/gguf.md, docs/quantization.md §2, docs/forward.md, docs/moe.md), never from the engine's C
code, so that when the two agree it means something: two readings of the same text,
in two languages, with two different numerics (this file computes the forward pass in
float64, the engine in float32).

Contents, in reading order:
  1. a GGUF reader (docs/gguf.md) over numpy.memmap
  2. dequantization of F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K,
     Q5_K, Q6_K and MXFP4 (docs/quantization.md §2), vectorized over blocks, with the
     format's float32 arithmetic order so the values are bit-exact with ggml's
  3. the Llama forward pass (docs/forward.md §2)
  4. the gpt-oss forward pass (docs/forward.md §2)
  5. the command line: logits, generate, golden, info, selftest

Usage (numpy is needed: run it with /usr/bin/python3):
  reference.py logits MODEL --tokens "1 403 407" [--out FILE]
        float32 little-endian [n_tokens][n_vocab] to FILE; prints the argmax of every
        position and the top-5 of the last
  reference.py generate MODEL --tokens "1 403 407" -n N
        greedy continuation, N ids on one line (no stop on EOS: always N tokens)
  reference.py golden MODEL --tokens "..." -n N --logits FILE --json FILE
        both at once for tests/golden (logits of the prompt, continuation, margins)
  reference.py info MODEL      hyperparameters and tensor table as this file reads them
  reference.py selftest        the worked examples and hand-computed values

The reference is meant for small models (it dequantizes every weight to float64 once).
"""

import argparse
import json
import math
import struct
import sys

import numpy as np

# ======================================================================================
# 1. GGUF reader (docs/gguf.md)
# ======================================================================================

# metadata value types (docs/gguf.md §2): id -> (name, struct format of a scalar)
GGUF_VTYPES = {
    0: ("UINT8", "<B"), 1: ("INT8", "<b"), 2: ("UINT16", "<H"), 3: ("INT16", "<h"),
    4: ("UINT32", "<I"), 5: ("INT32", "<i"), 6: ("FLOAT32", "<f"), 7: ("BOOL", "<?"),
    8: ("STRING", None), 9: ("ARRAY", None), 10: ("UINT64", "<Q"), 11: ("INT64", "<q"),
    12: ("FLOAT64", "<d"),
}
# numpy dtypes of fixed-size array elements
GGUF_ARRAY_DTYPES = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4",
                     7: "<u1", 10: "<u8", 11: "<i8", 12: "<f8"}

# ggml tensor types (docs/gguf.md §1): id -> (name, B elements per block, S bytes per block).
# Removed ids (4, 5, 31-33, 36-38) are absent: a file using them is rejected.
GGML_TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17), 40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18), 42: ("Q2_0", 64, 18),
}


class GGUFError(Exception):
    pass


class Tensor:
    """One tensor-info record (docs/gguf.md §2): ne[0] is the contiguous dimension."""

    def __init__(self, name, ne, type_id, offset):
        self.name, self.ne, self.type, self.offset = name, ne, type_id, offset
        tname, blck, size = GGML_TYPES[type_id]
        self.type_name = tname
        self.n_elements = int(np.prod(ne, dtype=np.int64))
        self.nbytes = self.n_elements // blck * size          # docs/gguf.md §2


class GGUFFile:
    """Header, metadata and tensor infos of a GGUF file; tensor bytes stay in the memmap."""

    def __init__(self, path):
        self.path = path
        self.mm = np.memmap(path, dtype=np.uint8, mode="r")
        if len(self.mm) < 24 or bytes(self.mm[0:4]) != b"GGUF":
            raise GGUFError(f"{path}: not a GGUF file (bad magic)")
        self.pos = 4
        self.version = self._read("<I")
        if self.version & 0xFFFF == 0:
            raise GGUFError(f"{path}: big-endian GGUF not supported")
        if self.version not in (2, 3):
            raise GGUFError(f"{path}: unsupported GGUF version {self.version}")
        n_tensors, n_kv = self._read("<Q"), self._read("<Q")

        # metadata (docs/gguf.md §2): keys in file order, values decoded
        self.kv, self.kv_type = {}, {}
        for _ in range(n_kv):
            key = self._read_str()
            if not key or key in self.kv:
                raise GGUFError(f"{path}: offset {self.pos}: empty or duplicate key '{key}'")
            vtype = self._read("<I")
            self.kv[key] = self._read_value(vtype)
            self.kv_type[key] = vtype

        # tensor infos (docs/gguf.md §2)
        self.tensors = {}
        for _ in range(n_tensors):
            name = self._read_str()
            n_dims = self._read("<I")
            if n_dims > 4:
                raise GGUFError(f"{path}: tensor '{name}' has {n_dims} dimensions")
            ne = [self._read("<Q") for _ in range(n_dims)]
            type_id, offset = self._read("<I"), self._read("<Q")
            if type_id not in GGML_TYPES:
                raise GGUFError(f"{path}: tensor '{name}' has invalid type {type_id}")
            if ne[0] % GGML_TYPES[type_id][1]:
                raise GGUFError(f"{path}: tensor '{name}': row of {ne[0]} is not a multiple of the block")
            self.tensors[name] = Tensor(name, ne, type_id, offset)

        # alignment and data section (docs/gguf.md §2)
        self.alignment = 32
        if "general.alignment" in self.kv:
            a = self.kv["general.alignment"]
            if self.kv_type["general.alignment"] != 4 or a == 0 or a & (a - 1):
                raise GGUFError(f"{path}: general.alignment must be a UINT32 power of two")
            self.alignment = a
        a = self.alignment
        self.data_offset = (self.pos + a - 1) // a * a if n_tensors else self.pos
        for t in self.tensors.values():
            if t.offset % a or self.data_offset + t.offset + t.nbytes > len(self.mm):
                raise GGUFError(f"{path}: tensor '{t.name}' is misaligned or past the end of the file")

    # --- primitive reads (all little-endian, docs/gguf.md §1)
    def _read(self, fmt):
        n = struct.calcsize(fmt)
        if self.pos + n > len(self.mm):
            raise GGUFError(f"{self.path}: truncated at offset {self.pos}")
        v = struct.unpack_from(fmt, self.mm, self.pos)[0]
        self.pos += n
        return v

    def _read_str(self):
        n = self._read("<Q")
        if n > len(self.mm) - self.pos:
            raise GGUFError(f"{self.path}: offset {self.pos}: string of {n} bytes past the end")
        s = bytes(self.mm[self.pos:self.pos + n]).decode("utf-8", errors="surrogateescape")
        self.pos += n
        return s

    def _read_value(self, vtype):
        if vtype == 8:
            return self._read_str()
        if vtype == 9:
            etype, count = self._read("<I"), self._read("<Q")
            if etype == 8:
                return [self._read_str() for _ in range(count)]
            if etype not in GGUF_ARRAY_DTYPES:       # nested arrays rejected (docs/gguf.md §2)
                raise GGUFError(f"{self.path}: offset {self.pos}: array of type {etype}")
            dt = np.dtype(GGUF_ARRAY_DTYPES[etype])
            nbytes = count * dt.itemsize
            if nbytes > len(self.mm) - self.pos:
                raise GGUFError(f"{self.path}: offset {self.pos}: array past the end")
            arr = np.frombuffer(self.mm, dtype=dt, count=count, offset=self.pos).copy()
            self.pos += nbytes
            return arr
        if vtype not in GGUF_VTYPES:
            raise GGUFError(f"{self.path}: offset {self.pos}: unknown value type {vtype}")
        return self._read(GGUF_VTYPES[vtype][1])

    # --- typed access
    def get(self, key, default=None, required=False):
        if key not in self.kv:
            if required:
                raise GGUFError(f"{self.path}: required key '{key}' is missing")
            return default
        return self.kv[key]

    def raw(self, name):
        """Bytes of a tensor as a uint8 view into the mapping."""
        t = self.tensors[name]
        start = self.data_offset + t.offset
        return self.mm[start:start + t.nbytes]

    def tensor(self, name):
        """Dequantized tensor as float32, numpy shape = reversed ne (docs/gguf.md §1)."""
        t = self.tensors[name]
        values = dequantize(t.type, self.raw(name), t.n_elements)
        return values.reshape(tuple(reversed(t.ne)))


# ======================================================================================
# 2. Dequantization (docs/quantization.md §2)
#
# Each dq_* takes the blocks of a tensor as a uint8 array [n_blocks, S] and returns
# float32 [n_blocks, B]. All arithmetic is float32 in the order of docs/quantization.md §2
# ======================================================================================

def _f16(b, off):
    """f16 field at byte `off` of every block -> float32 column [n_blocks, 1] (exact, docs/quantization.md §1)."""
    return b[:, off:off + 2].copy().view("<f2").astype(np.float32)


def _nibbles(qs):
    """Low nibble of qs[j] = element j, high nibble = element j+16 (docs/quantization.md §2, not interleaved)."""
    return np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int32)


def _bits32(b, off):
    """The 4 bytes at `off` as a little-endian u32; column k = bit k (the Q5 fifth bits)."""
    h = b[:, off:off + 4].copy().view("<u4")
    return ((h >> np.arange(32, dtype=np.uint32)) & 1).astype(np.int32)


def dq_f32(b):
    return b.copy().view("<f4")


def dq_f16(b):
    return b.copy().view("<f2").astype(np.float32)


def dq_bf16(b):
    # the upper half of a binary32 (docs/quantization.md §1)
    return (b.copy().view("<u2").astype(np.uint32) << 16).view(np.float32)


def dq_q4_0(b):
    d = _f16(b, 0)
    return (_nibbles(b[:, 2:18]) - 8).astype(np.float32) * d


def dq_q4_1(b):
    d, m = _f16(b, 0), _f16(b, 2)
    return _nibbles(b[:, 4:20]).astype(np.float32) * d + m


def dq_q5_0(b):
    d, hbits = _f16(b, 0), _bits32(b, 2)
    q = _nibbles(b[:, 6:22]) | (hbits << 4)
    return (q - 16).astype(np.float32) * d


def dq_q5_1(b):
    d, m, hbits = _f16(b, 0), _f16(b, 2), _bits32(b, 4)
    q = _nibbles(b[:, 8:24]) | (hbits << 4)
    return q.astype(np.float32) * d + m


def dq_q8_0(b):
    d = _f16(b, 0)
    return b[:, 2:34].view(np.int8).astype(np.float32) * d


# --- K-quants: element index maps over one 256-element super-block (docs/quantization.md §2)
_I = np.arange(256)
_H, _R = _I // 128, _I % 128          # half, index within the half
_K2, _L = _R // 32, _R % 32           # bit-pair (or nibble selector), lane
_G = _I // 32                         # 32-element sub-block (Q4_K, Q5_K)


def _scale_min_k4(s):
    """Unpack the 12 scale bytes of Q4_K/Q5_K into 8 scales and 8 mins (docs/quantization.md §2)."""
    s = s.astype(np.int32)
    sc = np.empty((s.shape[0], 8), np.int32)
    mn = np.empty((s.shape[0], 8), np.int32)
    for g in range(4):
        sc[:, g] = s[:, g] & 63
        mn[:, g] = s[:, g + 4] & 63
    for g in range(4, 8):
        sc[:, g] = (s[:, g + 4] & 0x0F) | ((s[:, g - 4] >> 6) << 4)
        mn[:, g] = (s[:, g + 4] >> 4) | ((s[:, g] >> 6) << 4)
    return sc, mn


def _q4k_nibble(qs):
    """4-bit code of every element: chunk c = i/64 uses qs[32c .. 32c+31]; low nibbles
    for even sub-blocks, high nibbles for odd ones (docs/quantization.md §2)."""
    byte = qs[:, 32 * (_I // 64) + _I % 32].astype(np.int32)
    return np.where(_G % 2 == 0, byte & 0x0F, byte >> 4)


def dq_q4_k(b):
    d, dmin = _f16(b, 0), _f16(b, 2)
    sc, mn = _scale_min_k4(b[:, 4:16])
    q = _q4k_nibble(b[:, 16:144])
    a = d * sc[:, _G].astype(np.float32)         # d·sc and dmin·m first (docs/quantization.md §2)
    m = dmin * mn[:, _G].astype(np.float32)
    return a * q.astype(np.float32) - m


def dq_q5_k(b):
    d, dmin = _f16(b, 0), _f16(b, 2)
    sc, mn = _scale_min_k4(b[:, 4:16])
    qh = b[:, 16:48].astype(np.int32)
    q = _q4k_nibble(b[:, 48:176]) | (((qh[:, _I % 32] >> _G) & 1) << 4)   # docs/quantization.md §2
    a = d * sc[:, _G].astype(np.float32)
    m = dmin * mn[:, _G].astype(np.float32)
    return a * q.astype(np.float32) - m


def dq_q2_k(b):
    scales = b[:, 0:16].astype(np.int32)
    qs = b[:, 16:80].astype(np.int32)
    d, dmin = _f16(b, 80), _f16(b, 82)
    q = (qs[:, 32 * _H + _L] >> (2 * _K2)) & 3                             # docs/quantization.md §2
    sc = scales[:, _I // 16]
    a = d * (sc & 0x0F).astype(np.float32)
    m = dmin * (sc >> 4).astype(np.float32)
    return a * q.astype(np.float32) - m


def dq_q3_k(b):
    hmask = b[:, 0:32].astype(np.int32)
    qs = b[:, 32:96].astype(np.int32)
    s = b[:, 96:108].astype(np.int32)
    d = _f16(b, 108)
    sc = np.empty((b.shape[0], 16), np.int32)                              # docs/quantization.md §2
    for k in range(16):
        low4 = s[:, k] & 0x0F if k < 8 else s[:, k - 8] >> 4
        high2 = (s[:, 8 + k % 4] >> (2 * (k // 4))) & 3
        sc[:, k] = (low4 | (high2 << 4)) - 32
    low2 = (qs[:, 32 * _H + _L] >> (2 * _K2)) & 3
    hbit = (hmask[:, _L] >> (4 * _H + _K2)) & 1
    q = low2 - np.where(hbit == 1, 0, 4)          # a cleared hmask bit subtracts 4
    a = d * sc[:, _I // 16].astype(np.float32)
    return a * q.astype(np.float32)


def dq_q6_k(b):
    ql = b[:, 0:128].astype(np.int32)
    qh = b[:, 128:192].astype(np.int32)
    scales = b[:, 192:208].view(np.int8).astype(np.float32)
    d = _f16(b, 208)
    byte = ql[:, 64 * _H + 32 * (_K2 & 1) + _L]                           # docs/quantization.md §2
    low4 = np.where(_K2 < 2, byte & 0x0F, byte >> 4)
    high2 = (qh[:, 32 * _H + _L] >> (2 * _K2)) & 3
    q = (low4 | (high2 << 4)) - 32
    return (d * scales[:, _I // 16]) * q.astype(np.float32)


# E2M1 values of the 16 codes (docs/quantization.md §2): sign bit 3, exponent bits 2-1, mantissa bit 0
E2M1 = np.array([0, 0.5, 1, 1.5, 2, 3, 4, 6, -0.0, -0.5, -1, -1.5, -2, -3, -4, -6], np.float32)


def dq_mxfp4(b):
    # E8M0 scale 2^(e-127); e = 0 and 1 give subnormal float32 values, kept as such
    scale = np.ldexp(np.float32(1.0), b[:, 0:1].astype(np.int32) - 127).astype(np.float32)
    return E2M1[_nibbles(b[:, 1:17])] * scale


DEQUANT = {
    "F32": dq_f32, "F16": dq_f16, "BF16": dq_bf16, "Q4_0": dq_q4_0, "Q4_1": dq_q4_1,
    "Q5_0": dq_q5_0, "Q5_1": dq_q5_1, "Q8_0": dq_q8_0, "Q2_K": dq_q2_k, "Q3_K": dq_q3_k,
    "Q4_K": dq_q4_k, "Q5_K": dq_q5_k, "Q6_K": dq_q6_k, "MXFP4": dq_mxfp4,
}


def dequantize(type_id, raw, n_elements):
    """Raw tensor bytes -> float32 vector of n_elements."""
    name, blck, size = GGML_TYPES[type_id]
    if name not in DEQUANT:
        raise GGUFError(f"tensor type {name} is not supported by the reference")
    blocks = np.asarray(raw, dtype=np.uint8).reshape(n_elements // blck, size)
    return DEQUANT[name](blocks).reshape(n_elements)


# ======================================================================================
# Shared pieces of both forward passes
# ======================================================================================

def rmsnorm(x, g, eps):
    """RMSNorm(x)_i = g_i · x_i / sqrt(mean(x²) + eps), eps inside the root
    (docs/forward.md §2). x: [n, d], one row per token."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g


def rope(u, pos, freq, mscale, neox):
    """Rotate every head of u [n, heads, hd] at positions pos [n].

    The angle of pair i is θ_i = p · freq[i]; cos and sin are multiplied by mscale
    (1 except with YaRN). Pairs are adjacent (u[2i], u[2i+1]) for llama ("normal" RoPE,
    docs/forward.md §3) and halves (u[i], u[i + n_rot/2]) for NeoX (docs/moe.md §4).
    Only the first n_rot = 2·len(freq) values of a head are rotated."""
    n_pairs = len(freq)
    theta = pos[:, None].astype(np.float64) * freq[None, :]           # [n, n_pairs]
    c = (np.cos(theta) * mscale)[:, None, :]                          # broadcast over heads
    s = (np.sin(theta) * mscale)[:, None, :]
    out = u.copy()
    if neox:
        a, b = u[..., :n_pairs], u[..., n_pairs:2 * n_pairs]
        out[..., :n_pairs] = a * c - b * s
        out[..., n_pairs:2 * n_pairs] = a * s + b * c
    else:
        a, b = u[..., 0:2 * n_pairs:2], u[..., 1:2 * n_pairs:2]
        out[..., 0:2 * n_pairs:2] = a * c - b * s
        out[..., 1:2 * n_pairs:2] = a * s + b * c
    return out


def attention(q, K, V, pos, scale, window=0, sinks=None):
    """Causal grouped-query attention for the new rows.

    q [n, H, hd] at positions pos [n]; K, V [T, Hkv, hd] hold positions 0..T-1 (the cache,
    new rows included). Query head j reads kv head j // (H/Hkv) (docs/forward.md §2).
    A key at position t is visible from position p iff t <= p and, with a sliding window
    W > 0, p - t < W. With sinks, sink j is one more logit in the softmax denominator
    with no value vector (docs/moe.md §2). Returns [n, H·hd]."""
    n, H, hd = q.shape
    T, Hkv = K.shape[0], K.shape[1]
    group = H // Hkv
    t = np.arange(T)
    visible = t[None, :] <= pos[:, None]
    if window > 0:
        visible &= (pos[:, None] - t[None, :]) < window
    out = np.empty((n, H, V.shape[2]))
    for j in range(H):
        g = j // group
        a = (q[:, j, :] @ K[:, g, :].T) * scale                       # [n, T]
        a = np.where(visible, a, -np.inf)
        m = a.max(axis=1, keepdims=True)
        if sinks is not None:
            m = np.maximum(m, sinks[j])
        w = np.exp(a - m)
        z = w.sum(axis=1, keepdims=True)
        if sinks is not None:
            z = z + np.exp(sinks[j] - m)
        out[:, j, :] = (w / z) @ V[:, g, :]
    return out.reshape(n, -1)


def silu(z):
    return z / (1.0 + np.exp(-z))


# --act-q8: round the input of every product with a quantized weight to 8 bits first, as
# minfer's fast CPU path (engine/quant.h) and llama.cpp's CPU backend do
# (docs/quantization.md §4). Off by default: the reference computes the exact model. On, it
# tells how far an exact engine and an 8-bit-activation engine may drift apart, which is
# what the golden tolerances are derived from.
ACT_Q8 = False
ACT_Q8_0_TYPES = ("Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "MXFP4")
ACT_Q8_K_TYPES = ("Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")


def round_activations(x, wtype):
    if not ACT_Q8 or wtype not in ACT_Q8_0_TYPES + ACT_Q8_K_TYPES:
        return x
    shape = x.shape
    if wtype in ACT_Q8_0_TYPES:
        # Q8_0 per 32 values: d = max|x|/127 in f32, q = round(x/d) (half away from zero)
        # with that f32 d, then d is stored as f16 and the product uses the f16 d
        b = x.astype(np.float32).reshape(-1, 32)
        d = np.abs(b).max(axis=1, keepdims=True) / np.float32(127)
        v = np.divide(b, d, out=np.zeros_like(b), where=d > 0).astype(np.float64)
        q = np.sign(v) * np.floor(np.abs(v) + 0.5)
        y = q * d.astype(np.float16).astype(np.float64)
    else:
        # Q8_K per 256 values: scale from the signed value of largest magnitude, f32 d
        b = x.astype(np.float32).reshape(-1, 256)
        mx = np.take_along_axis(b, np.abs(b).argmax(axis=1)[:, None], axis=1)
        iscale = np.divide(np.float32(-127), mx, out=np.zeros_like(mx), where=mx != 0)
        q = np.minimum(np.rint(iscale * b), 127)
        d = np.divide(np.float32(1), iscale, out=np.zeros_like(iscale), where=iscale != 0)
        y = q.astype(np.float64) * d.astype(np.float64)
    return y.reshape(shape)


class Matrix:
    """A weight matrix (or a stack of expert matrices) dequantized to float64, with the type
    it is stored in (for --act-q8)."""

    def __init__(self, g, name):
        self.w = g.tensor(name).astype(np.float64)
        self.type = g.tensors[name].type_name
        self.shape = self.w.shape

    def __call__(self, x, e=None):
        """W·x for every row of x: out[o] = Σ_i W[o][i]·x[i] (docs/forward.md §2); e picks
        one expert of a stack."""
        w = self.w if e is None else self.w[e]
        return round_activations(x, self.type) @ w.T


# ======================================================================================
# 3. Llama (docs/forward.md)
# ======================================================================================

def check_shapes(model, want, suffix):
    """Every block tensor (name + suffix) and the embedding/output against the shapes the architecture implies."""
    d, V = model.d, model.V
    for l, layer in enumerate(model.layers):
        for k, shape in want.items():
            if layer[k].shape != shape:
                raise GGUFError(f"blk.{l}.{k}{suffix} has shape {layer[k].shape}, expected {shape}")
    if model.tok_embd.shape != (V, d) or model.output.shape != (V, d):
        raise GGUFError(f"token_embd/output shape {model.tok_embd.shape}, expected {(V, d)}")


class Llama:
    def __init__(self, g):
        A = "llama."
        self.g = g
        self.d = int(g.get(A + "embedding_length", required=True))
        self.L = int(g.get(A + "block_count", required=True))
        self.H = int(g.get(A + "attention.head_count", required=True))
        self.Hkv = int(g.get(A + "attention.head_count_kv", self.H))
        self.hd = int(g.get(A + "attention.key_length", self.d // self.H))
        self.n_rot = int(g.get(A + "rope.dimension_count", self.hd))
        self.eps = float(g.get(A + "attention.layer_norm_rms_epsilon", required=True))
        self.F = int(g.get(A + "feed_forward_length", required=True))
        tokens = g.get("tokenizer.ggml.tokens")
        self.V = int(g.get(A + "vocab_size", len(tokens) if tokens is not None else 0))
        base = float(g.get(A + "rope.freq_base", 10000.0))
        # docs/forward.md §1: linear scaling divides every angle by the factor; YaRN/longrope not for llama
        stype = g.get(A + "rope.scaling.type", "linear")
        factor = float(g.get(A + "rope.scaling.factor", g.get(A + "rope.scale_linear", 0.0)))
        if stype not in ("none", "linear"):
            raise GGUFError(f"{g.path}: llama rope.scaling.type '{stype}' not supported")
        freq_scale = 1.0 / factor if factor and stype == "linear" else 1.0
        if self.H % self.Hkv or self.n_rot > self.hd or self.n_rot % 2:
            raise GGUFError(f"{g.path}: inconsistent head counts or rope dimension")
        # θ_i = p · freq_scale · base^(−2i/n_rot) [/ rope_freqs[i]]   (docs/forward.md §3)
        i = np.arange(self.n_rot // 2)
        self.freq = freq_scale * base ** (-2.0 * i / self.n_rot)
        if "rope_freqs.weight" in g.tensors:
            self.freq = self.freq / g.tensor("rope_freqs.weight").astype(np.float64)

        vec = lambda name: g.tensor(name).astype(np.float64)
        self.tok_embd = Matrix(g, "token_embd.weight")                 # [V, d]
        self.output_norm = vec("output_norm.weight")
        # docs/forward.md §1: output.weight absent -> tied to the embedding
        self.output = Matrix(g, "output.weight") if "output.weight" in g.tensors else self.tok_embd
        self.layers = []
        for l in range(self.L):
            p = f"blk.{l}."
            W = {k: Matrix(g, p + k + ".weight") for k in (
                "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")}
            W["attn_norm"] = vec(p + "attn_norm.weight")
            W["ffn_norm"] = vec(p + "ffn_norm.weight")
            self.layers.append(W)
        self._check_shapes()
        self.reset()

    def _check_shapes(self):
        d, hd, F = self.d, self.hd, self.F
        want = {"attn_norm": (d,), "attn_q": (self.H * hd, d), "attn_k": (self.Hkv * hd, d),
                "attn_v": (self.Hkv * hd, d), "attn_output": (d, self.H * hd),
                "ffn_norm": (d,), "ffn_gate": (F, d), "ffn_up": (F, d), "ffn_down": (d, F)}
        check_shapes(self, want, ".weight")

    def reset(self):
        self.K = [np.zeros((0, self.Hkv, self.hd)) for _ in range(self.L)]
        self.Vc = [np.zeros((0, self.Hkv, self.hd)) for _ in range(self.L)]
        self.n_past = 0
        self.router_gap = math.inf       # no router (see GptOss.router_gap)

    def eval(self, tokens):
        """Run tokens at positions n_past.. (docs/forward.md §2); returns their logits [n, V]."""
        n = len(tokens)
        pos = np.arange(self.n_past, self.n_past + n)
        x = self.tok_embd.w[np.asarray(tokens)]                           # 1. embedding
        for l, W in enumerate(self.layers):                               # 2. blocks
            h = rmsnorm(x, W["attn_norm"], self.eps)                      # 2.1
            q = W["attn_q"](h).reshape(n, self.H, self.hd)                # 2.2
            k = W["attn_k"](h).reshape(n, self.Hkv, self.hd)
            v = W["attn_v"](h).reshape(n, self.Hkv, self.hd)
            q = rope(q, pos, self.freq, 1.0, neox=False)                  # 2.3
            k = rope(k, pos, self.freq, 1.0, neox=False)
            self.K[l] = np.concatenate([self.K[l], k])                    # 2.4
            self.Vc[l] = np.concatenate([self.Vc[l], v])
            o = attention(q, self.K[l], self.Vc[l], pos, 1.0 / math.sqrt(self.hd))   # 2.5
            x = x + W["attn_output"](o)                                   # 2.6
            h = rmsnorm(x, W["ffn_norm"], self.eps)                       # 2.7
            x = x + W["ffn_down"](silu(W["ffn_gate"](h)) * W["ffn_up"](h))   # 2.8
        y = rmsnorm(x, self.output_norm, self.eps)                        # 3.
        self.n_past += n
        return self.output(y)                                             # 4.


# ======================================================================================
# 4. gpt-oss (docs/moe.md)
# ======================================================================================

def yarn_freqs(n_rot, base, freq_scale, ext_factor, n_ctx_orig, beta_fast=32.0, beta_slow=1.0):
    """Per-pair frequency ω'_i so that θ_i = p · ω'_i, with the YaRN ramp exactly as
    llama.cpp computes it: ramp ends rounded with floor/ceil (docs/moe.md §4)."""
    i = np.arange(n_rot // 2, dtype=np.float64)
    omega = base ** (-2.0 * i / n_rot)                     # θ_extrap / p
    if ext_factor == 0.0:
        return freq_scale * omega                          # plain (or linear-scaled) RoPE

    def corr(beta):
        return n_rot * math.log(n_ctx_orig / (2.0 * math.pi * beta)) / (2.0 * math.log(base))

    low = max(0.0, math.floor(corr(beta_fast)))
    high = min(n_rot - 1.0, math.ceil(corr(beta_slow)))
    ramp = 1.0 - np.clip((i - low) / max(0.001, high - low), 0.0, 1.0)
    mix = ramp * ext_factor
    return freq_scale * omega * (1.0 - mix) + omega * mix   # θ_interp·(1−mix) + θ_extrap·mix


def swiglu_oai(g, u, alpha=1.702, limit=7.0):
    """Clamped SwiGLU of gpt-oss (docs/moe.md §1 step 11): gate clamped above only, up on both
    sides, and the +1 on the clamped up value."""
    gc = np.minimum(g, limit)
    uc = np.clip(u, -limit, limit)
    return gc / (1.0 + np.exp(-alpha * gc)) * (uc + 1.0)


class GptOss:
    def __init__(self, g):
        A = g.get("general.architecture") + "."
        self.g = g
        self.d = int(g.get(A + "embedding_length", required=True))
        self.L = int(g.get(A + "block_count", required=True))
        self.H = int(g.get(A + "attention.head_count", required=True))
        self.Hkv = int(g.get(A + "attention.head_count_kv", self.H))
        self.hd = int(g.get(A + "attention.key_length", self.d // self.H))
        self.hd_v = int(g.get(A + "attention.value_length", self.hd))
        self.n_rot = int(g.get(A + "rope.dimension_count", self.hd))
        if self.n_rot != self.hd or self.hd_v != self.hd:
            raise GGUFError(f"{g.path}: rope.dimension_count/value_length must equal key_length (docs/forward.md §1)")
        self.eps = float(g.get(A + "attention.layer_norm_rms_epsilon", required=True))
        self.E = int(g.get(A + "expert_count", required=True))
        self.k = int(g.get(A + "expert_used_count", required=True))
        self.F = int(g.get(A + "expert_feed_forward_length", required=True))
        self.W = int(g.get(A + "attention.sliding_window", required=True))
        self.P = int(g.get(A + "attention.sliding_window_pattern", 2))
        tokens = g.get("tokenizer.ggml.tokens")
        self.V = int(g.get(A + "vocab_size", len(tokens) if tokens is not None else 0))

        # RoPE (docs/forward.md §1 notes, docs/moe.md §4): "yarn" -> ext_factor 1 and mscale; else plain angles
        base = float(g.get(A + "rope.freq_base", 10000.0))
        base_swa = float(g.get(A + "rope.freq_base_swa", base))
        stype = g.get(A + "rope.scaling.type", "linear")
        factor = float(g.get(A + "rope.scaling.factor", 0.0))
        s = 1.0 / factor if factor else 1.0
        n_ctx_orig = int(g.get(A + "rope.scaling.original_context_length",
                               g.get(A + "context_length", required=True)))
        attn_factor = float(g.get(A + "rope.scaling.attn_factor", 1.0))
        ext = 1.0 if stype == "yarn" else 0.0
        self.mscale = attn_factor * (1.0 + 0.1 * math.log(1.0 / s)) if ext else attn_factor
        # "none" keeps the scale on SWA layers only (docs/forward.md §1, last paragraph)
        s_full = 1.0 if stype == "none" else s
        self.freq_full = yarn_freqs(self.n_rot, base, s_full, ext, n_ctx_orig)
        self.freq_swa = yarn_freqs(self.n_rot, base_swa, s, ext, n_ctx_orig)

        vec = lambda name: g.tensor(name).astype(np.float64)
        self.tok_embd = Matrix(g, "token_embd.weight")
        self.output_norm = vec("output_norm.weight")
        self.output = Matrix(g, "output.weight") if "output.weight" in g.tensors else self.tok_embd
        self.layers = []
        for l in range(self.L):
            p = f"blk.{l}."
            W = {k: Matrix(g, p + k) for k in (
                "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
                "ffn_gate_inp.weight", "ffn_gate_exps.weight", "ffn_up_exps.weight",
                "ffn_down_exps.weight")}
            W.update({k: vec(p + k) for k in (
                "attn_norm.weight", "attn_q.bias", "attn_k.bias", "attn_v.bias",
                "attn_output.bias", "attn_sinks.weight", "post_attention_norm.weight",
                "ffn_gate_inp.bias", "ffn_gate_exps.bias", "ffn_up_exps.bias",
                "ffn_down_exps.bias")})
            W["sliding"] = (l % self.P) < (self.P - 1)                   # docs/moe.md §3
            self.layers.append(W)
        self._check_shapes()
        self.reset()

    def _check_shapes(self):
        d, hd, H, Hkv, E, F = self.d, self.hd, self.H, self.Hkv, self.E, self.F
        want = {"attn_norm.weight": (d,), "attn_q.weight": (H * hd, d), "attn_q.bias": (H * hd,),
                "attn_k.weight": (Hkv * hd, d), "attn_k.bias": (Hkv * hd,),
                "attn_v.weight": (Hkv * hd, d), "attn_v.bias": (Hkv * hd,),
                "attn_output.weight": (d, H * hd), "attn_output.bias": (d,),
                "attn_sinks.weight": (H,), "post_attention_norm.weight": (d,),
                "ffn_gate_inp.weight": (E, d), "ffn_gate_inp.bias": (E,),
                "ffn_gate_exps.weight": (E, F, d), "ffn_gate_exps.bias": (E, F),
                "ffn_up_exps.weight": (E, F, d), "ffn_up_exps.bias": (E, F),
                "ffn_down_exps.weight": (E, d, F), "ffn_down_exps.bias": (E, d)}
        check_shapes(self, want, "")

    def reset(self):
        self.K = [np.zeros((0, self.Hkv, self.hd)) for _ in range(self.L)]
        self.Vc = [np.zeros((0, self.Hkv, self.hd)) for _ in range(self.L)]
        self.n_past = 0
        # smallest gap between the k-th and the (k+1)-th router logit in the last eval():
        # how close the expert choice came to a tie (for the golden files)
        self.router_gap = math.inf

    def moe(self, W, h2):
        """Router, top-k, softmax over the k, clamped-SwiGLU experts (docs/moe.md §1 steps 9-12)."""
        out = np.zeros_like(h2)
        for t in range(h2.shape[0]):
            r = W["ffn_gate_inp.weight"](h2[t]) + W["ffn_gate_inp.bias"]      # 9.
            order = np.argsort(-r, kind="stable")                             # 10.
            sel = order[:self.k]
            if self.k < self.E:
                self.router_gap = min(self.router_gap, float(r[order[self.k - 1]] - r[order[self.k]]))
            wsel = np.exp(r[sel] - r[sel].max())
            wsel /= wsel.sum()
            for e, we in zip(sel, wsel):                                      # 11.
                g = W["ffn_gate_exps.weight"](h2[t], e) + W["ffn_gate_exps.bias"][e]
                u = W["ffn_up_exps.weight"](h2[t], e) + W["ffn_up_exps.bias"][e]
                y = W["ffn_down_exps.weight"](swiglu_oai(g, u), e) + W["ffn_down_exps.bias"][e]
                out[t] += we * y                                              # 12.
        return out

    def eval(self, tokens):
        """Run tokens at positions n_past.. (docs/forward.md §2); returns their logits [n, V]."""
        n = len(tokens)
        self.router_gap = math.inf
        pos = np.arange(self.n_past, self.n_past + n)
        x = self.tok_embd.w[np.asarray(tokens)]                               # 3.1
        for l, W in enumerate(self.layers):
            h = rmsnorm(x, W["attn_norm.weight"], self.eps)                   # 1.
            q = (W["attn_q.weight"](h) + W["attn_q.bias"]).reshape(n, self.H, self.hd)   # 2.
            k = (W["attn_k.weight"](h) + W["attn_k.bias"]).reshape(n, self.Hkv, self.hd)
            v = (W["attn_v.weight"](h) + W["attn_v.bias"]).reshape(n, self.Hkv, self.hd)
            freq = self.freq_swa if W["sliding"] else self.freq_full
            q = rope(q, pos, freq, self.mscale, neox=True)                    # 3.
            k = rope(k, pos, freq, self.mscale, neox=True)
            self.K[l] = np.concatenate([self.K[l], k])                        # 4.
            self.Vc[l] = np.concatenate([self.Vc[l], v])
            o = attention(q, self.K[l], self.Vc[l], pos, 1.0 / math.sqrt(self.hd),   # 5.
                          window=self.W if W["sliding"] else 0, sinks=W["attn_sinks.weight"])
            x = x + W["attn_output.weight"](o) + W["attn_output.bias"]        # 6., 7.
            h2 = rmsnorm(x, W["post_attention_norm.weight"], self.eps)        # 8.
            x = x + self.moe(W, h2)                                           # 9.-13.
        z = rmsnorm(x, self.output_norm, self.eps)                            # 3.3
        self.n_past += n
        return self.output(z)


def load_model(path):
    g = GGUFFile(path)
    arch = g.get("general.architecture", required=True)
    if arch == "llama":
        return Llama(g)
    if arch == "gpt-oss":
        return GptOss(g)
    raise GGUFError(f"{path}: architecture '{arch}' is not supported")


# ======================================================================================
# 5. Command line
# ======================================================================================

def parse_tokens(s):
    return [int(t) for t in s.replace(",", " ").split()]


def greedy(model, prompt, n):
    """Greedy continuation of n tokens. Also returns, per step, how robust that choice is
    to small numeric differences: the gap between the best and the second-best logit, or
    (gpt-oss) the smallest router gap of the evaluation that produced those logits if that
    is smaller — a router near-tie can swap an expert and move the logits by ~1."""
    model.reset()
    logits = model.eval(prompt)
    prompt_logits = logits
    ids, margins = [], []
    for _ in range(n):
        last = logits[-1]
        top2 = np.argsort(-last, kind="stable")[:2]
        ids.append(int(top2[0]))
        margins.append(min(float(last[top2[0]] - last[top2[1]]), model.router_gap))
        logits = model.eval([ids[-1]])
    return prompt_logits, ids, margins


def cmd_logits(args):
    global ACT_Q8
    ACT_Q8 = args.act_q8
    model = load_model(args.model)
    tokens = parse_tokens(args.tokens)
    logits = model.eval(tokens)
    if args.out:
        logits.astype("<f4").tofile(args.out)
    print(f"positions {len(tokens)}, n_vocab {logits.shape[1]}")
    print("argmax per position:", " ".join(str(int(i)) for i in logits.argmax(axis=1)))
    last = logits[-1]
    top = np.argsort(-last, kind="stable")[:5]
    print("top-5 of the last position:", ", ".join(f"{int(i)}: {last[i]:.4f}" for i in top))
    print("logits[0..3] of the last position:", ", ".join(f"{v:.4f}" for v in last[:4]))
    return 0


def cmd_generate(args):
    model = load_model(args.model)
    _, ids, _ = greedy(model, parse_tokens(args.tokens), args.n)
    print(" ".join(str(i) for i in ids))
    return 0


def cmd_golden(args):
    """Everything tests/golden keeps about one case (see tests/golden/README.md)."""
    global ACT_Q8
    model = load_model(args.model)
    tokens = parse_tokens(args.tokens)
    logits, ids, margins = greedy(model, tokens, args.n)
    logits.astype("<f4").tofile(args.logits)
    top2 = np.sort(logits, axis=1)[:, -2:]
    info = {"n_vocab": int(logits.shape[1]), "n_tokens": len(tokens),
            "argmax": [int(i) for i in logits.argmax(axis=1)],
            "prompt_margin": [round(float(m), 6) for m in top2[:, 1] - top2[:, 0]],
            "continuation": ids, "continuation_margin": [round(m, 6) for m in margins],
            "max_abs_logit": round(float(np.abs(logits).max()), 4)}
    model.reset()
    model.eval(tokens)
    if model.router_gap < math.inf:
        info["prompt_router_gap"] = round(model.router_gap, 6)
    # with quantized matrices: how far 8-bit activations alone move the prompt's logits
    if any(t.type_name in ACT_Q8_0_TYPES + ACT_Q8_K_TYPES for t in model.g.tensors.values()):
        ACT_Q8 = True
        model.reset()
        info["act_q8_max_abs_diff"] = float(f"{np.abs(model.eval(tokens) - logits).max():.3g}")
        ACT_Q8 = False
    with open(args.json, "w") as f:
        json.dump(info, f)
    return 0


def cmd_info(args):
    g = GGUFFile(args.model)
    print(f"{args.model}: GGUF v{g.version}, {len(g.kv)} keys, {len(g.tensors)} tensors, "
          f"alignment {g.alignment}, data at {g.data_offset}")
    for k, v in g.kv.items():
        if isinstance(v, (list, np.ndarray)):
            v = f"[{len(v)} elements]"
        print(f"  {k} = {v}")
    for t in g.tensors.values():
        print(f"  {t.name:40s} {t.type_name:6s} ne={t.ne}")
    return 0


# --- selftest: the worked examples of docs/quantization.md §7 (checked against ggml's own
#     dequantizers), plus hand-computed values. Every expected number below is either a
#     worked value or derived by hand in the comment next to it, never produced by this file.

def _hexblock(s):
    return np.frombuffer(bytes.fromhex(s), np.uint8).reshape(1, -1)


def _expect(name, got, want, tol=0.0):
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    err = np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want)))
    if not err <= tol or got.shape != want.shape:
        raise AssertionError(f"{name}: got {got.tolist()} want {want.tolist()}")
    print(f"  ok  {name}")


def selftest(_args=None):
    print("selftest: scalars (docs/quantization.md §1)")
    f16 = lambda h: dq_f16(np.frombuffer(struct.pack("<H", h), np.uint8).reshape(1, 2))[0, 0]
    _expect("f16 0x3C00, 0x2E66, 0xAE66, 0x0001",
            [f16(0x3C00), f16(0x2E66), f16(0xAE66), f16(0x0001)],
            [1.0, 0.0999755859375, -0.0999755859375, 2.0 ** -24])
    assert f16(0x7C00) == np.inf
    bf = lambda h: dq_bf16(np.frombuffer(struct.pack("<H", h), np.uint8).reshape(1, 2))[0, 0]
    _expect("bf16 0x3F80, 0xC040", [bf(0x3F80), bf(0xC040)], [1.0, -3.0])

    print("selftest: worked examples (docs/quantization.md §7)")
    y = dq_q4_0(_hexblock("66AE6318CD7227DC8136EB9045FAAF5409BE"))[0]
    _expect("Q4_0 y[0..7]", y[0:8], [0.49987793, -0.0, -0.49987793, 0.599853516,
                                     0.0999755859, -0.399902344, 0.699829102, 0.199951172], 1e-8)
    _expect("Q4_0 y[16..23]", y[16:24], [0.199951172, 0.699829102, -0.399902344, 0.0999755859,
                                         0.599853516, -0.49987793, -0.0, 0.49987793], 1e-8)
    y = dq_q8_0(_hexblock("3D2A9CB9D6F3102D4A6784A1BEDBF815324F6C89A6C3E0FD1A3754718EABC8E5021F"))[0]
    _expect("Q8_0 y[0..7]", y[0:8], [-4.87365723, -3.46029663, -2.04693604, -0.633575439,
                                     0.779785156, 2.19314575, 3.60650635, 5.01986694], 1e-8)
    qs = bytes((37 * k + 11) % 256 for k in range(128))
    blk = bytes.fromhex("662E6624C54A8F138721FE409C3B71E2") + qs
    y = dq_q4_k(np.frombuffer(blk, np.uint8).reshape(1, -1))[0]
    _expect("Q4_K y[0..7]", y[0:8], [5.37838745, -0.120269775, 2.37911987, 4.87850952,
                                     7.37789917, 1.87924194, 4.37863159, 6.87802124], 1e-8)
    _expect("Q4_K y[32..39]", y[32:40], [-0.566986084, 2.43228149, 4.43179321, 6.43130493,
                                         8.43081665, 11.4300842, 13.4295959, -0.566986084], 1e-8)
    _expect("Q4_K y[128..135]", y[128:136], [65.2794495, -0.704437256, 29.2882385, 59.2809143,
                                             89.2735901, 23.2897034, 53.2823792, 83.2750549], 1e-8)
    y = dq_mxfp4(_hexblock("7E1032547698BADCFE0F1E2D3C4B5A6978"))[0]
    _expect("MXFP4 (docs/quantization.md §7) y[0..7]", y[0:8], [0, 0.5, 1, 2, -0.0, -0.5, -1, -2])
    _expect("MXFP4 (docs/quantization.md §7) y[16..23]", y[16:24],
            [0.25, 0.75, 1.5, 3, -0.25, -0.75, -1.5, -3])
    codes = "F001E213D425C637B849AA5B9C6D8E7F"
    y = dq_mxfp4(_hexblock("7E" + codes))[0]
    _expect("MXFP4 (docs/quantization.md §7 case A)", y,
            [0, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 0, -0.25, -0.5, -0.75, -1, -1.5, -2, -3,
             -3, 0, -2, 0.25, -1.5, 0.5, -1, 0.75, -0.75, 1, -0.5, 1.5, -0.25, 2, 0, 3])
    y = dq_mxfp4(_hexblock("81" + codes))[0]
    _expect("MXFP4 (docs/quantization.md §7 case B)", y,
            [0, 2, 4, 6, 8, 12, 16, 24, 0, -2, -4, -6, -8, -12, -16, -24,
             -24, 0, -16, 2, -12, 4, -8, 6, -6, 8, -4, 12, -2, 16, 0, 24])
    y = dq_mxfp4(_hexblock("00" + "77" * 16))[0]
    _expect("MXFP4 e=0 keeps the subnormal 6·2^-127", y[0:1], [6.0 * 2.0 ** -127])

    print("selftest: hand-computed values (formulas of docs/quantization.md §2)")
    # Q4_1: d = 0.5 (0x3800), m = -1 (0xBC00); qs[3] = 0xA5 -> y[3] = 5·0.5 − 1 = 1.5,
    # y[19] = 10·0.5 − 1 = 4
    b = bytearray(20)
    b[0:4] = struct.pack("<HH", 0x3800, 0xBC00)
    b[4 + 3] = 0xA5
    y = dq_q4_1(np.frombuffer(bytes(b), np.uint8).reshape(1, -1))[0]
    _expect("Q4_1 y[3], y[19], y[0]", [y[3], y[19], y[0]], [1.5, 4.0, -1.0])
    # Q5_0: d = 2 (0x4000); qh bit 5 and bit 21 set (u32 0x00200020); qs[5] = 0x3C:
    # y[5] = ((0xC | 16) − 16)·2 = 24, y[21] = ((0x3 | 16) − 16)·2 = 6, y[0] = (0 − 16)·2 = −32
    b = bytearray(22)
    b[0:6] = struct.pack("<HI", 0x4000, 0x00200020)
    b[6 + 5] = 0x3C
    y = dq_q5_0(np.frombuffer(bytes(b), np.uint8).reshape(1, -1))[0]
    _expect("Q5_0 y[5], y[21], y[0]", [y[5], y[21], y[0]], [24.0, 6.0, -32.0])
    # Q5_1: d = 0.25 (0x3400), m = 1 (0x3C00); qh bit 31 set; qs[15] = 0xF0:
    # y[31] = (0xF | 16)·0.25 + 1 = 31·0.25 + 1 = 8.75, y[15] = 0·0.25 + 1 = 1
    b = bytearray(24)
    b[0:8] = struct.pack("<HHI", 0x3400, 0x3C00, 0x80000000)
    b[8 + 15] = 0xF0
    y = dq_q5_1(np.frombuffer(bytes(b), np.uint8).reshape(1, -1))[0]
    _expect("Q5_1 y[31], y[15]", [y[31], y[15]], [8.75, 1.0])
    # Q2_K: d = 1, dmin = 0.5 (0x3800). Element 200: h = 1, r = 72, k2 = 2, l = 8:
    # q = (qs[40] >> 4) & 3; qs[40] = 0x30 -> q = 3; scales[12] = 0x25 (sc 5, min 2):
    # y = 1·5·3 − 0.5·2 = 14
    b = bytearray(84)
    b[12] = 0x25
    b[16 + 40] = 0x30
    b[80:84] = struct.pack("<HH", 0x3C00, 0x3800)
    y = dq_q2_k(np.frombuffer(bytes(b), np.uint8).reshape(1, -1))[0]
    _expect("Q2_K y[200], y[0]", [y[200], y[0]], [14.0, 0.0])
    # Q3_K: d = 0.5. Element 150: h = 1, r = 22, k2 = 0, l = 22, scale k = 9.
    # low2 = qs[32 + 22] & 3 = 2 (qs = 0x02); hmask[22] bit 4·1 + 0 = 4 set -> q = 2.
    # sc_9: low4 = s[1] >> 4 = 0x7 (s[1] = 0x70), high2 = (s[8 + 1] >> 4) & 3 = 2
    # (s[9] = 0x20) -> sc = (7 | 32) − 32 = 7. y = 0.5·7·2 = 7.
    # Element 0: scale k = 0: low4 = s[0] & 0xF = 0, high2 = s[8] & 3 = 0 -> sc = −32;
    # q = 0 − 4 (hmask bit clear) -> y = 0.5·(−32)·(−4) = 64.
    b = bytearray(110)
    b[22] = 0x10
    b[32 + 54] = 0x02
    b[96 + 1] = 0x70
    b[96 + 9] = 0x20
    b[108:110] = struct.pack("<H", 0x3800)
    y = dq_q3_k(np.frombuffer(bytes(b), np.uint8).reshape(1, -1))[0]
    _expect("Q3_K y[150], y[0]", [y[150], y[0]], [7.0, 64.0])
    # Q5_K: d = 1, dmin = 1; sc_1 = 3 (s[1] = 3), m_1 = 2 (s[5] = 2). Element 40: g = 1,
    # c = 0, l = 8: q4 = qs[8] >> 4 = 0x6 (qs[8] = 0x60), fifth bit (qh[8] >> 1) & 1 = 1
    # (qh[8] = 0x02) -> q = 22. y = 1·3·22 − 1·2 = 64.
    b = bytearray(176)
    b[0:4] = struct.pack("<HH", 0x3C00, 0x3C00)
    b[4 + 1] = 3
    b[4 + 5] = 2
    b[16 + 8] = 0x02
    b[48 + 8] = 0x60
    y = dq_q5_k(np.frombuffer(bytes(b), np.uint8).reshape(1, -1))[0]
    _expect("Q5_K y[40]", [y[40]], [64.0])
    # Q6_K: d = 0.5. Element 200: h = 1, r = 72, k2 = 2, l = 8: byte = ql[64 + 0 + 8] = 0xA3
    # -> low4 = 0xA (high nibble since k2 >= 2); high2 = (qh[32 + 8] >> 4) & 3 = 2
    # (qh[40] = 0x20) -> q = (10 | 32) − 32 = 10; scales[12] = −3: y = 0.5·(−3)·10 = −15.
    b = bytearray(210)
    b[72] = 0xA3
    b[128 + 40] = 0x20
    b[192 + 12] = 0xFD
    b[208:210] = struct.pack("<H", 0x3800)
    y = dq_q6_k(np.frombuffer(bytes(b), np.uint8).reshape(1, -1))[0]
    _expect("Q6_K y[200]", [y[200]], [-15.0])

    print("selftest: 8-bit activations (--act-q8, docs/quantization.md §4)")
    # x[0] = 2.54, x[1] = 1, rest 0: d = 2.54/127 = 0.02 (f32), q[1] = round(1/0.02) = 50;
    # f16(0.02) = (1 + 287/1024)·2^-6 = 0.0200042724609375, so y[1] = 50·that = 1.000213623046875
    # and y[0] = 127·that = 2.5405426025390625
    global ACT_Q8
    ACT_Q8 = True
    x = np.zeros(32)
    x[0], x[1] = 2.54, 1.0
    y = round_activations(x, "Q8_0")
    ACT_Q8 = False
    _expect("Q8_0 activation rounding", y[0:3], [2.5405426025390625, 1.000213623046875, 0.0])

    print("selftest: RoPE and YaRN (docs/forward.md §3, docs/moe.md §4)")
    # gpt-oss-20b: ω_i for i = 0, 8, 9, 12, 17, 18, 31 as llama.cpp computes them (docs/moe.md §4)
    # (computed there in f32 by repeated multiplication: compare to 1e-5 relative)
    f = yarn_freqs(64, 150000.0, 1.0 / 32, 1.0, 4096)
    _expect("YaRN ω_i (20b)", f[[0, 8, 9, 12, 17, 18, 31]],
            [1.0, 5.081327e-2, 3.162075e-2, 7.015714e-3, 2.279478e-4, 3.830881e-5, 3.023511e-7], 2e-6)
    _expect("YaRN mscale", [1.0 + 0.1 * math.log(32)], [1.3465736], 1e-7)
    # stories260K at p = 3: θ = 3, 0.3, 0.03, 0.003 (docs/forward.md §3)
    f = 10000.0 ** (-2.0 * np.arange(4) / 8)
    _expect("llama θ at p = 3", 3 * f, [3, 0.3, 0.03, 0.003], 1e-12)

    print("selftest: all passed")
    return 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("logits", help="logits of every position")
    p.add_argument("model")
    p.add_argument("--tokens", required=True)
    p.add_argument("--out")
    p.add_argument("--act-q8", action="store_true",
                   help="round activations to 8 bits before quantized products (engine numerics)")
    p.set_defaults(fn=cmd_logits)
    p = sub.add_parser("generate", help="greedy continuation")
    p.add_argument("model")
    p.add_argument("--tokens", required=True)
    p.add_argument("-n", type=int, default=32)
    p.set_defaults(fn=cmd_generate)
    p = sub.add_parser("golden", help="prompt logits + continuation for tests/golden")
    p.add_argument("model")
    p.add_argument("--tokens", required=True)
    p.add_argument("-n", type=int, default=100)
    p.add_argument("--logits", required=True)
    p.add_argument("--json", required=True)
    p.set_defaults(fn=cmd_golden)
    p = sub.add_parser("info", help="metadata and tensors")
    p.add_argument("model")
    p.set_defaults(fn=cmd_info)
    p = sub.add_parser("selftest", help="worked examples and hand-computed values")
    p.set_defaults(fn=selftest)
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except (GGUFError, OSError) as e:
        print(f"reference.py: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
