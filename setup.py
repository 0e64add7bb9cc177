"""Only the optional C parts; everything else about the package is in pyproject.toml.

Two ways to compute person_key = HMAC-SHA256(JKN_PSEUDONYM_KEY, NIK) faster than DuckDB SQL's two
sha256() calls a row, both optional (without a C compiler or OpenSSL's headers the build skips them
with a warning, and ingest falls back to the next way; flows/ingest/pseudonym.py):

  - `flows/jkn_pseudonym.duckdb_extension`: a DuckDB extension built from flows/native/jkn_pseudonym.c
    against DuckDB's C extension API (the two headers vendored beside it), so the hashing runs in
    DuckDB's own threads; the shared library gets the 534-byte metadata footer DuckDB's loader reads
    (`append_footer`);
  - `flows._pseudonym` (flows/_pseudonym.c): the same HMAC on whole Arrow arrays, for a Python UDF.
"""

import platform
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DUCKDB_EXTENSION = "jkn_pseudonym"  # the file's name is the extension's: DuckDB calls jkn_pseudonym_init_c_api
EXTENSION_VERSION = "v0.1.0"
# The C API version the source asks for (flows/native/jkn_pseudonym.c: DUCKDB_EXTENSION_API_VERSION_*):
# DuckDB loads a C_STRUCT extension built for this version or an older minor of the same major.
C_API_VERSION = "v1.5.6"


def duckdb_platform() -> str:
    """DuckDB's name for this platform (`pragma platform`), which the footer must repeat exactly. From
    duckdb itself where the build can import it, else from what DuckDB names its Linux and macOS builds."""
    try:
        import duckdb

        return duckdb.execute("pragma platform").fetchone()[0]
    except Exception:  # noqa: BLE001 - pip builds in an isolated environment without duckdb
        pass
    machine = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    if sys.platform == "darwin":
        return f"osx_{machine}"
    if sys.platform.startswith("win"):
        return f"windows_{machine}"
    musl = platform.libc_ver()[0] != "glibc"
    return f"linux_{machine}" + ("_musl" if musl else "")


def append_footer(library: bytes, platform_name: str) -> bytes:
    """`library` followed by the metadata DuckDB's loader reads from a file's last 512 bytes
    (duckdb/src/main/extension/extension_load.cpp, ParseExtensionMetaData): eight fields of 32 bytes,
    zero-padded, which the loader reads last field first (magic value "4", platform, C API version,
    extension version, ABI type, three unused), then 256 bytes of signature (zeros: unsigned, so the
    connection must allow unsigned extensions). Before them the WebAssembly custom-section header
    DuckDB's own build writes, so the footer is a well-formed section named `duckdb_signature`:
    id 0, section size 531 (LEB128 93 04), name length 16, the name, payload length 512 (80 04)."""

    def field(text: str) -> bytes:
        raw = text.encode("ascii")
        if len(raw) > 32:
            raise ValueError(f"footer field longer than 32 bytes: {text!r}")
        return raw.ljust(32, b"\0")

    fields = [field(""), field(""), field(""), field("C_STRUCT"), field(EXTENSION_VERSION)]
    fields += [field(C_API_VERSION), field(platform_name), field("4")]
    metadata = b"".join(fields) + b"\0" * 256
    section = b"\x00\x93\x04\x10duckdb_signature\x80\x04"
    assert len(section) + len(metadata) == 534
    return library + section + metadata


class BuildExt(build_ext):
    """The usual C module, then the DuckDB extension beside it (skipped with a warning if it fails)."""

    def run(self):
        super().run()
        try:
            self.build_duckdb_extension()
        except Exception as error:  # noqa: BLE001 - optional, like the C module
            self.warn(f"the DuckDB extension {DUCKDB_EXTENSION} was not built ({error}); ingest falls back")

    def build_duckdb_extension(self):
        source = Path("flows/native/jkn_pseudonym.c")
        package_dir = Path(self.get_ext_fullpath("flows._pseudonym")).parent
        target = package_dir / f"{DUCKDB_EXTENSION}.duckdb_extension"
        temp = Path(self.build_temp) / "duckdb_extension"
        objects = self.compiler.compile(
            [str(source), *(str(source.with_name(name)) for name in ("jkn_rules.c", "jkn_repeats.c"))],
            output_dir=str(temp),
            include_dirs=[str(source.parent)],
            extra_postargs=["-O2", "-fPIC", "-fvisibility=hidden", "-Wno-deprecated-declarations"],
        )
        library = temp / f"{DUCKDB_EXTENSION}.so"
        self.compiler.link_shared_object(objects, str(library), libraries=["crypto"])
        package_dir.mkdir(parents=True, exist_ok=True)
        target.write_bytes(append_footer(library.read_bytes(), duckdb_platform()))
        if self.editable_mode or self.inplace:  # `pip install -e .`: beside the sources, as for the C module
            Path("flows", target.name).write_bytes(target.read_bytes())

    def get_outputs(self):
        built = Path(self.get_ext_fullpath("flows._pseudonym")).parent / f"{DUCKDB_EXTENSION}.duckdb_extension"
        return [*super().get_outputs(), *([str(built)] if built.exists() else [])]


setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=[
        Extension(
            "flows._pseudonym",
            ["flows/_pseudonym.c"],
            libraries=["crypto"],
            extra_compile_args=["-O2", "-Wno-deprecated-declarations"],  # SHA256_Init & co.: OpenSSL 3 deprecates them
            optional=True,
        )
    ],
)
