"""An SMTP session that can tell "the server refused the message" from "the server may have it".

smtplib's `sendmail` raises the same exceptions whether the server refused the
message or the connection broke after the message had gone (a timeout waiting
for the reply to the final dot, a server that hangs up, a `421` to QUIT after
its `250`). Retrying in the second case is how a mail server that accepted a
message once ends up delivering it ten times. So:

- before the message content is sent, every failure is safe to retry: the
  server cannot have the message;
- the content is sent only after `on_sending()` has recorded that it is on its
  way (a crash from then on is "maybe sent", never "pending");
- a reply to the final dot is a verdict (`250` accepted, `4xx` try again,
  `5xx` refused); no reply raises `AnswerUnknown`, which is not retried;
- after the `250` nothing can undo the delivery: QUIT and closing are best effort.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Callable

CRLF = b"\r\n"


class AnswerUnknown(smtplib.SMTPException):
    """The message content went out but no verdict came back: it may have been accepted."""


class JournalledSMTP(smtplib.SMTP):
    """smtplib.SMTP whose DATA phase calls `on_sending` just before the content goes out."""

    def __init__(self, *args, on_sending: Callable[[], None] = lambda: None, **kwargs):
        self.on_sending = on_sending
        super().__init__(*args, **kwargs)

    def data(self, msg):
        self.putcmd("data")
        code, reply = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        if isinstance(msg, str):
            msg = msg.encode("ascii")
        content = re.sub(rb"(?m)^\.", b"..", msg)
        if content[-2:] != CRLF:
            content += CRLF
        self.on_sending()  # from here on the server may end up with the message
        # If sending fails, the final dot did not get through whole: the server cannot
        # accept a message it never saw the end of, so that error is safe to retry.
        self.send(content + b"." + CRLF)
        try:
            return self.getreply()
        except (OSError, smtplib.SMTPServerDisconnected) as error:
            self.close()
            raise AnswerUnknown(f"{type(error).__name__}: {error}") from error

    def quit_quietly(self) -> None:
        """End the session; the message's fate is decided, so a bad answer to QUIT changes nothing."""
        try:
            self.quit()
        except (OSError, smtplib.SMTPException):
            self.close()
