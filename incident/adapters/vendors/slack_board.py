"""Messages kept up to date in Slack (the Board port): one message per key, edited in place.

The same mechanism as the war room's greeting, without the pin:

- The message is delivered by `SlackMessages.deliver` under the board's key: an intent is
  stored before the first attempt, the ts remembered (VendorRefs `msg:<key>`) right after
  the post, and the message carries its key in its metadata. A call that finds an intent but
  no ts (a crash between posting and remembering, or a post that timed out after Slack took
  it) searches the channel's history for the key before posting: it finds the message and
  edits it instead of posting another.
- Every later call edits that message (`chat.update`, which is safe to repeat). What it says
  now is remembered as a digest (VendorRefs `shown:<key>`, replaced at each change), so a
  call with the text it says already sends nothing to Slack. The digest is written after
  the edit: a crash between the two only makes the next call edit again, to the same text.
- A message deleted by someone (`message_not_found` on edit) is remembered as gone
  (`gone:<key>`) and the next generation of it is posted (`<key>#2`, `#3` ...), delivered
  as above.

The guarantee: for one key, at most one live message per generation, whatever crashes or
timeouts happen between posting and remembering, provided the earlier post is still among
the channel's 2000 messages since the first attempt (how far `deliver` searches); a new
generation only when the last was deleted. Calls for one key are expected one at a time (a
subject's steps run one after the other): two at once could leave the remembered digest
saying another text than the message, which the next changed text mends.
"""

from __future__ import annotations

import hashlib

from incident.adapters.database.vendor_refs import VendorRefs
from incident.adapters.vendors.slack_api import VENDOR, VENDOR_NAME, log
from incident.adapters.vendors.slack_messages import SlackMessages, fit, logged_id, ref_name
from incident.domain.records import SubjectRef
from incident.services.ports import VendorRejected

BOARD_GENERATIONS = 20  # messages a key may have, each but the last deleted by hand


class SlackBoard:
    """Posts a message once per key and keeps it saying the latest text."""

    def __init__(self, *, messages: SlackMessages, refs: VendorRefs) -> None:
        self._messages = messages
        self._refs = refs

    async def show(
        self, *, subject: SubjectRef, channel: str, text: str, key: str, where: str
    ) -> None:
        """Make the message of `key` in `channel` say `text`: posted by the first call,
        edited by later ones, nothing sent when it says `text` already. `where`: the
        destination as errors name it."""
        text = fit(text)
        said = _digest(text)
        for generation in range(1, BOARD_GENERATIONS + 1):
            message_key = board_key(key, generation)
            if await self._find(subject, ref_name("gone", message_key)) is not None:
                continue
            ts, posted = await self._messages.deliver(
                subject=subject, channel=channel, text=text, key=message_key, where=where
            )
            shown = f"{generation}/{said}"
            if not posted:
                if await self._find(subject, ref_name("shown", key)) == shown:
                    return  # it says that already
                edited = await self._messages.edit(
                    channel, ts, text, operation="board edit", incident_id=logged_id(subject)
                )
                if not edited:
                    self._log_gone(subject, channel, ts, key)
                    await self._refs.remember(
                        subject.id, VENDOR, ref_name("gone", message_key), ts, kind=subject.kind
                    )
                    continue
            await self._refs.replace(
                subject.id, VENDOR, ref_name("shown", key), shown, kind=subject.kind
            )
            return
        raise VendorRejected(
            VENDOR_NAME,
            f"the message {key} was deleted {BOARD_GENERATIONS} times; leave it in the "
            "channel (it is kept up to date there)",
        )

    async def _find(self, subject: SubjectRef, name: str) -> str | None:
        return await self._refs.find(subject.id, VENDOR, name, kind=subject.kind)

    @staticmethod
    def _log_gone(subject: SubjectRef, channel: str, ts: str, key: str) -> None:
        log.warning(
            "a message kept up to date was deleted in Slack; posting it again",
            extra={
                "action": "slack_board_gone",
                "incident_id": logged_id(subject),
                "subject": subject.key,
                "channel": channel,
                "ts": ts,
                "key": key,
            },
        )


def board_key(key: str, generation: int = 1) -> str:
    """The delivery key of the `generation`-th message of a board's `key`."""
    return key if generation == 1 else f"{key}#{generation}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
