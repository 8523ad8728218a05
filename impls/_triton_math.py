"""Math the in-repo Triton kernels share (libdevice.tanh raises under the interpreter, so tanh is built here)."""

from __future__ import annotations

import triton
import triton.language as tl


@triton.jit
def tanh(x):
    # accurate to a few ulp at every |x|: a Taylor polynomial below |x| = 0.3 (next term < 1e-7 relative), and
    # (1 − e^{−2|x|}) / (1 + e^{−2|x|}) above, where 1 − e^{−2|x|} no longer cancels. The exp form alone has an
    # absolute error of about ε near 0, so softcap·tanh(s / softcap) would be off by softcap·ε (50·ε at softcap 50).
    ax = tl.abs(x)
    x2 = x * x
    poly = x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0 + x2 * (62.0 / 2835.0)))))
    e = tl.exp(-2.0 * ax)
    big = (1.0 - e) / (1.0 + e)
    return tl.where(ax < 0.3, poly, tl.where(x < 0, -big, big))
