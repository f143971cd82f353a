"""Diplomacy news ingest worker.

Kept free of third-party imports: ``python3 -m worker.devservices`` must run before
any third-party package is installed.
"""

import os as _os
import platform as _platform

__version__ = "0.1.0"

# numpy's OpenBLAS picks its kernels by CPU model at load, and kernels sum in different
# orders: the same training gave another model file on an AMD EPYC (Haswell kernels) than on
# the Intel machines it was made on (SkylakeX kernels), and a probability at a threshold can
# tip either way. One kernel for every x86-64 machine (AVX2, which they all have since 2015)
# keeps `train` byte for byte reproducible and an item's scores the same everywhere. It must
# be set before numpy loads, which is why it lives here; an explicit OPENBLAS_CORETYPE wins.
OPENBLAS_CORE = "Haswell"
if _platform.machine().lower() in ("x86_64", "amd64"):
    _os.environ.setdefault("OPENBLAS_CORETYPE", OPENBLAS_CORE)
