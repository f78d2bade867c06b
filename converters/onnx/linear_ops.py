"""Products between activations for the ONNX reader: MatMul with a non-constant or batched right operand, Gemm
with a non-constant B, and Einsum, all on the IR's BATCH_MATMUL (float32) with transposes, reshapes and SUM
around it.  Einsum: any number of operands, implicit or explicit output, ellipses, and repeated letters within
an operand (diagonals)."""
from __future__ import annotations

import string

import numpy as np

from converters.onnx.common import Value

F32 = np.dtype(np.float32)
MAX_BATCH_DIMS = 3          # BATCH_MATMUL broadcasts up to three batch dimensions


class LinearOps:
    """Uses the host translator's helpers (typed, op, reduce_to, _reshape_to, axis_gather, ...)."""

    def reshaped(self, x: Value, shape, name: str) -> Value:
        shape = tuple(int(d) for d in shape)
        if tuple(x.shape) == shape:
            return x
        self._reshape_to(name, x, shape, False)
        return self.values[name]

    def transposed(self, x: Value, perm, name: str) -> Value:
        perm = list(perm)
        if perm == sorted(perm):
            return x
        shape = tuple(x.shape[p] for p in perm)
        if x.const is not None:
            return self.const_value(name, np.ascontiguousarray(x.const.transpose(perm)))
        t = self.typed(x)
        out = self.tensor(name, shape, x.dtype)
        self.op("TRANSPOSE", [t, self.const_tensor(name + "/perm", np.array(perm, np.int32))], [out])
        return self.new_value(name, shape, x.dtype, out, False)

    def batch_matmul(self, name: str, a: Value, b: Value, adj_a: bool = False, adj_b: bool = False) -> Value:
        """numpy.matmul of two float tensors of rank >= 2 (batch dimensions broadcast)."""
        for v in (a, b):
            if v.dtype != F32:
                self.unsupported(f"MatMul of {v.dtype} (float32 is supported)")
        m, k = (a.shape[-1], a.shape[-2]) if adj_a else (a.shape[-2], a.shape[-1])
        k2, n = (b.shape[-1], b.shape[-2]) if adj_b else (b.shape[-2], b.shape[-1])
        if k != k2:
            self.bad(f"MatMul of {list(a.shape)} by {list(b.shape)}: depths {k} and {k2}")
        try:
            batch = tuple(np.broadcast_shapes(tuple(a.shape[:-2]), tuple(b.shape[:-2])))
        except ValueError:
            self.bad(f"batch dimensions of {list(a.shape)} and {list(b.shape)} do not broadcast")
        if len(batch) > MAX_BATCH_DIMS:
            # merge the batch dimensions where neither operand broadcasts them
            ba, bb = (1,) * (len(batch) - (a.rank - 2)) + tuple(a.shape[:-2]), \
                (1,) * (len(batch) - (b.rank - 2)) + tuple(b.shape[:-2])
            if ba != bb:
                self.unsupported(f"MatMul broadcasting more than {MAX_BATCH_DIMS} batch dimensions")
            total = int(np.prod(batch, dtype=np.int64))
            r = self.batch_matmul(name + "/merged", self.reshaped(a, (total,) + a.shape[-2:], name + "/a3"),
                                  self.reshaped(b, (total,) + b.shape[-2:], name + "/b3"), adj_a, adj_b)
            return self.reshaped(r, batch + (m, n), name)
        ta = self._as_float32(self.get_plain(a))
        tb = self._as_float32(self.get_plain(b))
        shape = batch + (m, n)
        out = self.tensor(name, shape, F32)
        self.op("BATCH_MATMUL", [ta, tb], [out], adj_x=adj_a, adj_y=adj_b)
        return self.new_value(name, shape, F32, out, False)

    def matmul_values(self, name: str, a: Value, b: Value) -> Value:
        """ONNX MatMul (numpy.matmul, 1-D operands promoted and their axis dropped again)."""
        if a.rank == 0 or b.rank == 0:
            self.bad("MatMul of a scalar")
        a2 = self.reshaped(a, (1,) + a.shape, name + "/a2") if a.rank == 1 else a
        b2 = self.reshaped(b, b.shape + (1,), name + "/b2") if b.rank == 1 else b
        shape = list(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])) + [a2.shape[-2], b2.shape[-1]]
        if a.rank == 1:
            del shape[-2]
        if b.rank == 1:
            del shape[-1]
        if a.rank > 1 and b.rank > 1:
            return self.batch_matmul(name, a2, b2)
        r = self.batch_matmul(name + "/2d", a2, b2)
        return self.reshaped(r, shape, name)

    # ----- Einsum ---------------------------------------------------------------------------------
    def op_Einsum(self, node, ins, attrs):
        self.check_attrs(attrs, {"equation"})
        if not ins or any(v is None for v in ins):
            self.bad("needs at least one input")
        if self._fold(node, ins, attrs):
            return
        eq = str(attrs.get("equation", "")).replace(" ", "")
        terms, output = self._einsum_terms(eq, ins)
        ops = []
        for k, (v, letters) in enumerate(zip(ins, terms)):
            if v.dtype != F32:
                self.unsupported(f"Einsum of {v.dtype} (float32 is supported)")
            ops.append(self._einsum_unique(f"{node.output[0]}/in{k}", v, letters))
        name = node.output[0]
        while True:
            # sum out letters only one operand holds and the output lacks
            for k, (v, letters) in enumerate(ops):
                others = set(output).union(*(set(l) for j, (_, l) in enumerate(ops) if j != k))
                gone = [i for i, c in enumerate(letters) if c not in others]
                if gone:
                    kept = "".join(c for c in letters if c in others)
                    ops[k] = (self.reduce_to(f"{name}/sum{k}_{len(kept)}", v, "SUM", gone, False), kept)
            if len(ops) == 1:
                break
            (a, la), (b, lb) = ops[0], ops[1]
            later = set(output).union(*(set(l) for _, l in ops[2:]))
            ops = [self._einsum_pair(f"{name}/pair{len(ops)}", a, la, b, lb, later)] + ops[2:]
        v, letters = ops[0]
        if sorted(letters) != sorted(output):
            self.bad(f"equation {eq!r}: output letters {output!r} do not match the operands")
        self.values[name] = self.transposed(v, [letters.index(c) for c in output], name + "/t")

    def _einsum_terms(self, eq: str, ins):
        """The operands' letter strings (ellipses spelled with upper-case letters) and the output's."""
        lhs, arrow, out = eq.partition("->")
        terms = lhs.split(",")
        if len(terms) != len(ins) or any(t.count("...") > 1 for t in terms + [out]):
            self.bad(f"equation {eq!r} for {len(ins)} inputs")
        spare = string.ascii_uppercase
        widths = []
        for t, v in zip(terms, ins):
            explicit = len(t.replace("...", ""))
            if not t.replace("...", "").isalpha() and t.replace("...", ""):
                self.bad(f"equation {eq!r}: only letters and ellipses are allowed")
            width = v.rank - explicit
            if width < 0 or (width and "..." not in t):
                self.bad(f"equation {eq!r}: term {t!r} does not fit input of shape {list(v.shape)}")
            widths.append(width)
        most = max(widths) if widths else 0
        ell = spare[:most]
        spelled = [t.replace("...", ell[most - w:]) for t, w in zip(terms, widths)]
        if arrow:
            output = out.replace("...", ell)
        else:
            counts = {}
            for t in spelled:
                for c in t:
                    counts[c] = counts.get(c, 0) + 1
            output = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c.islower()))
        return spelled, output

    def _einsum_unique(self, name: str, v: Value, letters: str):
        """An operand with each letter once: a repeated letter takes the diagonal of its axes."""
        while len(set(letters)) != len(letters):
            c = next(ch for ch in letters if letters.count(ch) > 1)
            first, second = [i for i, ch in enumerate(letters) if ch == c][:2]
            if v.shape[first] != v.shape[second]:
                self.bad(f"letter {c!r} spans axes of sizes {v.shape[first]} and {v.shape[second]}")
            rest = [i for i in range(v.rank) if i not in (first, second)]
            v = self.transposed(v, rest + [first, second], name + f"/diag{c}t")
            n = v.shape[-1]
            v = self.reshaped(v, v.shape[:-2] + (n * n,), name + f"/diag{c}r")
            tables = [list(range(d)) for d in v.shape[:-1]] + [[i * (n + 1) for i in range(n)]]
            v = self.axis_gather(name + f"/diag{c}", v, tables)
            letters = "".join(letters[i] for i in rest) + c
        return v, letters

    def _einsum_pair(self, name: str, a: Value, la: str, b: Value, lb: str, later: set):
        """The contraction of two operands, keeping the letters in `later`, as one batched product."""
        batch = [c for c in la if c in lb and c in later]
        contract = [c for c in la if c in lb and c not in later]
        left = [c for c in la if c not in lb]
        right = [c for c in lb if c not in la]
        size = {c: d for c, d in zip(la, a.shape)}
        size_b = {c: d for c, d in zip(lb, b.shape)}
        for c in batch + contract:
            if size[c] != size_b[c] and 1 not in (size[c], size_b[c]):
                self.bad(f"letter {c!r} has sizes {size[c]} and {size_b[c]}")
        at = self.transposed(a, [la.index(c) for c in batch + left + contract], name + "/at")
        bt = self.transposed(b, [lb.index(c) for c in batch + contract + right], name + "/bt")

        def prod(cs, sizes):
            return int(np.prod([sizes[c] for c in cs], dtype=np.int64))
        a3 = self.reshaped(at, tuple(size[c] for c in batch) + (prod(left, size), prod(contract, size)),
                           name + "/a3")
        b3 = self.reshaped(bt, tuple(size_b[c] for c in batch) + (prod(contract, size_b), prod(right, size_b)),
                           name + "/b3")
        if not batch:
            a3, b3 = self.reshaped(a3, (1,) + a3.shape, name + "/a1"), self.reshaped(b3, (1,) + b3.shape, name + "/b1")
        r = self.batch_matmul(name + "/mm", a3, b3)
        out_batch = tuple(max(size[c], size_b[c]) for c in batch)
        shape = out_batch + tuple(size[c] for c in left) + tuple(size_b[c] for c in right)
        return self.reshaped(r, shape, name), "".join(batch + left + right)
