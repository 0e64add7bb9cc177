"""What a run allows one message, and the record of what happened to it, written as it happens.

A channel reports each attempt to the message's journal the moment the attempt
is over, so an accepted message is recorded `delivered` before anything else
can go wrong (a QUIT that fails, the process being killed). An email whose
content is on its way is first marked `sending`: a run that finds a message
still `sending` knows the previous run died with the message in the mail
server's hands and marks it `unknown` instead of sending it again.

The journal also carries the run's limits for the message: how many attempts
it may still make in this run (counted in `ops.deliveries`, so Prefect retrying
the alerts task does not multiply them) and the monotonic deadline of the run's
delivery time budget (`JKN_DELIVERY_BUDGET_SECONDS`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from flows.scrub import hide_secrets

RECORD_ATTEMPT = """
insert into ops.deliveries
select unnest(alert_keys), recipient, $channel, $attempt, $status, $detail, $at, message_id, $run_id
from ops.outgoing
where message_id = $message_id
"""

# Found at the start of a run: the previous run stopped while a mail server had the message.
INTERRUPTED = (
    "the run stopped while the message was with the mail server: it may have been delivered, "
    "so it is not sent again (set its status to 'pending' in ops.outgoing to send it anyway)"
)


class Journal:
    """A journal that records nothing and sets no limit (a channel used on its own)."""

    attempts_allowed = 1_000_000
    deadline: float | None = None

    def record(self, attempt) -> None:
        attempt.recorded = True

    def sending(self) -> None:
        pass

    def seconds_left(self, wanted: float) -> float:
        """`wanted`, cut to what is left of the budget (0 when it is spent)."""
        if self.deadline is None:
            return wanted
        return max(0.0, min(wanted, self.deadline - time.monotonic()))


@dataclass
class DatabaseJournal(Journal):
    """Records one message's attempts in ops.deliveries and its state in ops.outgoing."""

    con: duckdb.DuckDBPyConnection
    message_id: str
    channel: str
    run_id: str
    attempts_before: int
    attempts_allowed: int
    deadline: float | None = None
    attempts_made: int = 0

    def record(self, attempt) -> None:
        if getattr(attempt, "recorded", False):
            return
        self.attempts_made += 1
        self.con.execute(
            RECORD_ATTEMPT,
            {
                "message_id": self.message_id,
                "channel": self.channel,
                "attempt": self.attempts_before + self.attempts_made,
                "status": attempt.status,
                "detail": hide_secrets(attempt.detail),
                "at": datetime.fromtimestamp(attempt.at, tz=UTC),
                "run_id": self.run_id,
            },
        )
        if attempt.status == "delivered":
            self.con.execute(
                "update ops.outgoing set status = 'delivered', attempts = ?, delivered_at = ? where message_id = ?",
                [
                    self.attempts_before + self.attempts_made,
                    datetime.fromtimestamp(attempt.at, tz=UTC),
                    self.message_id,
                ],
            )
        elif attempt.status in ("error", "failed"):
            # The server answered with a refusal: it does not have the message.
            self.con.execute(
                "update ops.outgoing set status = 'pending' where message_id = ? and status = 'sending'",
                [self.message_id],
            )
        attempt.recorded = True

    def sending(self) -> None:
        self.con.execute("update ops.outgoing set status = 'sending' where message_id = ?", [self.message_id])


def attempts_this_run(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, int]:
    """Attempts already made per message in this run (an earlier try of the same task)."""
    return dict(
        con.execute(
            "select message_id, count(distinct attempt) from ops.deliveries where run_id = ? group by message_id",
            [run_id],
        ).fetchall()
    )


def settle_interrupted(con: duckdb.DuckDBPyConnection, run_id: str, now: datetime) -> int:
    """Messages a dead run left `sending` become `unknown`, with an attempt saying why."""
    stuck = [row[0] for row in con.execute("select message_id from ops.outgoing where status = 'sending'").fetchall()]
    for message_id in stuck:
        attempts = con.execute("select attempts from ops.outgoing where message_id = ?", [message_id]).fetchone()[0]
        con.execute(
            RECORD_ATTEMPT,
            {
                "message_id": message_id,
                "channel": "email",
                "attempt": attempts + 1,
                "status": "unknown",
                "detail": INTERRUPTED,
                "at": now,
                "run_id": run_id,
            },
        )
        con.execute(
            "update ops.outgoing set status = 'unknown', attempts = attempts + 1 where message_id = ?", [message_id]
        )
    return len(stuck)
