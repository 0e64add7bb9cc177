"""Only the optional C part; everything else about the package is in pyproject.toml.

`flows._pseudonym` computes the HMAC-SHA256 of NIKs with OpenSSL (flows/_pseudonym.c). It is
optional: without a C compiler or OpenSSL's headers the build skips it (with a warning) and
ingest computes the same HMAC in DuckDB SQL, more slowly.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "flows._pseudonym",
            ["flows/_pseudonym.c"],
            libraries=["crypto"],
            extra_compile_args=["-O2", "-Wno-deprecated-declarations"],  # SHA256_Init & co.: OpenSSL 3 deprecates them
            optional=True,
        )
    ]
)
