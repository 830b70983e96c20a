#!/usr/bin/env python3
"""Fits the rational R(z) = P(z) / Q(z) (degree n, Q(0) = 1) to the scaled complementary error function
erfcx(z) = erfc(z) * exp(z^2) on [0, Z] in relative error, by iteratively reweighted linear least squares in mpmath,
and reports the worst relative error of the float32-rounded coefficients on a fine grid.

src/cuda/activation.cuh uses `fit_erfcx.py 3 5` for the 16-bit GELU (fast_erfc_pos). Needs mpmath only.
"""
import struct
import sys

import mpmath as mp


def f32(v):
    return struct.unpack("f", struct.pack("f", float(v)))[0]


def fit(n, z_max, points=400, rounds=30):
    mp.mp.dps = 40
    # Chebyshev-like nodes crowd both ends of the interval, where the error of a least-squares fit peaks.
    zs = [z_max * (0.5 - 0.5 * mp.cos(mp.pi * (i + 0.5) / points)) for i in range(points)]
    f = [mp.erfc(z) * mp.exp(z * z) for z in zs]
    w = [mp.mpf(1)] * points
    for _ in range(rounds):
        # Unknowns p0..pn, q1..qn of P(z) - f(z) (Q(z) - 1) = f(z), each equation scaled by w / f (relative error).
        rows, rhs = [], []
        for z, fz, wi in zip(zs, f, w):
            s = wi / fz
            rows.append([s * z**k for k in range(n + 1)] + [-s * fz * z**k for k in range(1, n + 1)])
            rhs.append(s * fz)
        a, b = mp.matrix(rows), mp.matrix(rhs)
        x = mp.lu_solve(a.T * a, a.T * b)
        p = [x[k] for k in range(n + 1)]
        q = [mp.mpf(1)] + [x[n + 1 + k] for k in range(n)]
        errs = [sum(p[k] * z**k for k in range(n + 1)) / sum(q[k] * z**k for k in range(n + 1)) / fz - 1
                for z, fz in zip(zs, f)]
        worst = max(abs(e) for e in errs)
        # Weight up where the error is large: pushes the least-squares fit towards equal ripple.
        w = [wi * (1 + 3 * abs(e) / worst) for wi, e in zip(w, errs)]
        total = sum(w)
        w = [wi * points / total for wi in w]
    return [f32(c) for c in p], [f32(c) for c in q]


def horner(c, z):
    r = 0.0
    for v in reversed(c):
        r = r * z + v
    return r


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    z_max = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    p, q = fit(n, z_max)
    worst, at = 0.0, 0.0
    for i in range(4001):
        z = z_max * i / 4000
        r = abs(horner(p, z) / horner(q, z) / float(mp.erfc(z) * mp.exp(z * z)) - 1)
        if r > worst:
            worst, at = r, z
    print(f"degree {n} on [0, {z_max}]: worst relative error {worst:.3g} at z = {at:.4g}")
    print("P (z^0 first):", ", ".join(f"{c:.9e}f" for c in p))
    print("Q (z^0 first):", ", ".join(f"{c:.9e}f" for c in q))


if __name__ == "__main__":
    main()
