"""What each kind of extract file must hold: one `ExtractKind` per kind, one `Column` per column.

Everything else is generated from these declarations: the SQL that reads, types and checks a file
(`rules`), the columns a part stores, and the schema of the `raw.<kind>` views over the parts
(`raw_schema`), so a column is declared once.
"""

from __future__ import annotations

from dataclasses import dataclass

from flows import codes

# The segment and status codes and the spellings accepted for them: seeds/segments.csv and
# seeds/statuses.csv (flows/codes.py).
SEGMENTS, SEGMENT_ALIASES, STATUS_ALIASES = codes.SEGMENTS, codes.SEGMENT_ALIASES, codes.STATUS_ALIASES


@dataclass(frozen=True)
class Column:
    """One column of an extract kind.

    type: `region` (Kemendagri code), `segment`, `status`, `count` (whole number >= 0),
    `money` (amount >= 0), `digits` (identifier of exactly `digits` digits), `code`
    (identifier, any text), `text`, `nik` (pseudonymised at the door, never stored),
    `period` (optional check of the period in the name; not stored).
    """

    name: str
    type: str
    aliases: tuple[str, ...] = ()
    required: bool = True  # the header must have it
    nullable: bool = False  # a row may leave it empty
    digits: int | None = None
    sql_type: str | None = None  # the stored type, where it is not SQL_TYPES[type]

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


REGION = Column(
    "region_code", "region", ("kode_wilayah", "kode_kabkota", "kode_kab_kota", "kd_wilayah", "kode_daerah", "kode_kab")
)
SEGMENT = Column("segment", "segment", ("segmen", "segmen_peserta", "jenis_kepesertaan"))
STATUS = Column("status", "status", ("status_peserta", "status_kepesertaan"))
PERIOD = Column("period", "period", ("periode", "bulan", "month", "semester"), required=False, nullable=True)


@dataclass(frozen=True)
class ExtractKind:
    """What a file of one kind must hold, which rows are bad, and where its rows go."""

    name: str
    table: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # one row per key in a file; a repeat is rejected (it would count twice)
    semester: bool = False  # period YYYY-S1/S2 (else YYYY-MM)
    date_column: str = "month"  # the date the period stands for
    row_checks: tuple[tuple[str, str, str], ...] = ()  # (column, SQL condition of a bad row, reason)

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)


KINDS = {
    "region_counts": ExtractKind(
        "region_counts",
        "raw.region_counts",
        (
            REGION,
            SEGMENT,
            STATUS,
            Column("participants", "count", ("jumlah_peserta", "peserta", "jml_peserta")),
            PERIOD,
        ),
        key=("region_code", "segment", "status"),
    ),
    "population": ExtractKind(
        "population",
        "raw.population",
        (REGION, Column("population", "count", ("jumlah_penduduk", "penduduk", "jml_penduduk")), PERIOD),
        key=("region_code",),
        semester=True,
        date_column="as_of",
        row_checks=(("population", "population = 0", "population must be greater than 0"),),
    ),
    "participants": ExtractKind(
        "participants",
        "raw.participants",
        (
            Column("card_no", "digits", ("noka", "no_kartu", "nomor_kartu", "no_kartu_jkn"), digits=13),
            Column("nik", "nik", ("no_nik", "nomor_induk_kependudukan")),
            REGION,
            SEGMENT,
            STATUS,
            Column("employer_id", "code", ("npp", "no_npp", "kode_badan_usaha"), required=False, nullable=True),
            Column("wage", "money", ("upah", "gaji"), required=False, nullable=True, sql_type="decimal(18, 2)"),
            PERIOD,
        ),
        key=("card_no",),
        row_checks=(
            (
                "employer_id",
                "segment = 'PPU_BU' and employer_id is null",
                "employer_id (NPP) is required for segment PPU_BU",
            ),
        ),
    ),
    "employers": ExtractKind(
        "employers",
        "raw.employers",
        (
            Column("employer_id", "code", ("npp", "no_npp", "kode_badan_usaha")),
            Column("business_id", "digits", ("nib", "no_nib"), nullable=True, digits=13),
            Column("name", "text", ("nama", "nama_perusahaan", "nama_badan_usaha"), nullable=True),
            REGION,
            Column(
                "registered_workers",
                "count",
                ("jumlah_pekerja_terdaftar", "pekerja_terdaftar", "jumlah_pekerja", "jml_pekerja"),
            ),
            Column("reported_wage_total", "money", ("total_upah", "jumlah_upah", "upah", "gaji"), nullable=True),
            Column(
                "contribution_due",
                "money",
                ("iuran_tagihan", "tagihan_iuran", "iuran_terutang", "iuran"),
                nullable=True,
            ),
            Column(
                "contribution_paid", "money", ("iuran_dibayar", "pembayaran_iuran", "iuran_terbayar"), nullable=True
            ),
            Column(
                "months_in_arrears",
                "count",
                ("bulan_tunggakan", "jumlah_bulan_tunggakan", "lama_tunggakan"),
                nullable=True,
                sql_type="integer",
            ),
            PERIOD,
        ),
        key=("employer_id",),
    ),
    "workforce": ExtractKind(
        "workforce",
        "raw.workforce",
        (
            Column("business_id", "digits", ("nib", "no_nib"), digits=13),
            Column("name", "text", ("nama", "nama_perusahaan", "nama_badan_usaha"), nullable=True),
            REGION,
            Column("workers", "count", ("jumlah_pekerja", "jumlah_tenaga_kerja", "tenaga_kerja", "jml_pekerja")),
            PERIOD,
        ),
        key=("business_id",),
    ),
}

# SQL types a Parquet column may have, by column type; identifiers must be text.


# The SQL type a stored column has, by column type (identifiers are text, counts whole numbers).
SQL_TYPES = {
    "region": "varchar",
    "segment": "varchar",
    "status": "varchar",
    "count": "bigint",
    "money": "decimal(20, 2)",
    "digits": "varchar",
    "code": "varchar",
    "text": "varchar",
}
# Columns of every raw view that come from the load, not from the file.
LOAD_COLUMNS = (("load_id", "integer"), ("file_name", "varchar"), ("period", "varchar"))


def stored_columns(kind: ExtractKind) -> list[str]:
    """The columns a part keeps for each good row: the file's, with the NIK replaced by what is derived from it."""
    stored = []
    for column in kind.columns:
        if column.type == "nik":
            stored += ["person_key", "sex", "birth_year"]
        elif column.type != "period":
            stored.append(column.name)
    return stored


def part_columns(kind: ExtractKind) -> list[str]:
    """The columns a part holds for each good row: the date its period stands for, then the stored ones."""
    return [kind.date_column, *stored_columns(kind)]


def raw_schema(kind: ExtractKind) -> list[tuple[str, str]]:
    """(column, SQL type) of `raw.<kind>`: the load's columns, the date the period stands for, the stored ones."""
    schema = [*LOAD_COLUMNS, (kind.date_column, "date")]
    for column in kind.columns:
        if column.type == "nik":
            # 32 raw bytes of HMAC-SHA256 (shown as hex wherever a person sees it)
            schema += [("person_key", "blob"), ("sex", "varchar"), ("birth_year", "integer")]
        elif column.type != "period":
            schema.append((column.name, column.sql_type or SQL_TYPES[column.type]))
    return schema
