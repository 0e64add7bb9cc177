"""The keys of one alert in a payload, in their order: the contract's (docs/contract.md, section 6 of the
outside contract) and then what the rule itself measured. The digest's CSV attachment (flows/digests.py)
has the contract's keys as its columns, so the two cannot drift apart.

It imports nothing, so flows/digests.py can read it without the rest of the alerts package.
"""

from __future__ import annotations

# The contract's keys of one alert, in the contract's order; also the digest CSV's columns.
CONTRACT_KEYS = (
    "alert_key",
    "rule",
    "state",
    "severity",
    "level",
    "code",
    "name",
    "month",
    "actual_pct",
    "expected_pct",
    "target_pct",
    "target_date",
    "gap_pp",
    "people_needed",
    "projected_target_month",
    "message",
)
# What the rule measured (`measure` names it: gap_pp, months_late, participants, coverage_pct,
# active_rate_pct, worker_registration_pct, unpaid_contributions_idr, failed_checks, months_not_reported).
MEASURE_KEYS = (
    "measure",
    "value",
    "previous_value",
    "previous_month",
    "threshold",
    "count",
    "detail",
)
PAYLOAD_KEYS = CONTRACT_KEYS + MEASURE_KEYS
# Measures counted in whole units (people, rupiah, months, checks); the others are rounded to 2 decimals.
WHOLE_NUMBER_MEASURES = (
    "participants",
    "unpaid_contributions_idr",
    "months_late",
    "failed_checks",
    "months_not_reported",
)
