"""Build configuration for the optional native ristretto255 backend (everything else is in pyproject.toml).

The extension is ``optional``: if the C compiler is missing or fails, ``pip install .``
still succeeds and blindmatch runs on libsodium (rbcl) alone. The AVX-512 IFMA and AVX2
code is compiled through a target pragma inside its own file, so no machine-specific flag is
passed here and the build works on any x86_64 or other architecture.
"""

from setuptools import Extension, setup

_NATIVE = "src/blindmatch/crypto/native/"

setup(
    ext_modules=[
        Extension(
            "blindmatch.crypto.native._r255",
            sources=[_NATIVE + name for name in ("module.c", "r255_portable.c", "r255_ifma.c", "r255_avx2.c", "scalar.c", "sha512.c", "sha512x8.c", "msm.c")],
            depends=[_NATIVE + name for name in ("fe51.h", "fe51x8_ifma.h", "fe25x4_avx2.h", "r255_consts.h", "r255_group.h", "r255_ops.h", "r255_backends.h", "msm_lanes.h", "scalar.h", "sha512.h", "sha512x8.h")],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
