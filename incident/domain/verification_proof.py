"""Proof of ownership, and the one rule about personal data.

Pure. Ownership is proven by what only the owner can show about the account's own money:
the hashes of its deposits and withdrawals (checked against the ledger by whoever reviews),
and screenshots of the customer's wallet or bank statement showing those movements. Never
by personal data: support does not ask for identity documents, ID numbers, dates of birth
or selfies, does not take them when offered, and refuses a request that carries them
(`refuse_personal_data`), naming the rule, so nothing of the kind is ever stored.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath

from incident.domain.case_context import NETWORKS, ContextRefused, FieldProblem
from incident.domain.errors import InvalidValue
from incident.domain.verification_policy import ProofRules


class Direction(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"


class FileKind(StrEnum):
    WALLET_SCREENSHOT = "wallet_screenshot"
    BANK_STATEMENT = "bank_statement"


@dataclass(frozen=True)
class TxProof:
    """A deposit to or withdrawal from the account, by its transaction hash."""

    network: str  # a network of case_context.NETWORKS: evm, bitcoin
    hash: str  # lower case: hashes carry no checksum, so case means nothing
    direction: Direction

    @property
    def key(self) -> str:
        return f"tx:{self.network}:{self.hash}"


@dataclass(frozen=True)
class FileProof:
    """A screenshot or statement, kept by its content hash (the bytes are stored apart and
    purged after the decision; the name the customer gave is not kept)."""

    kind: FileKind
    content_type: str  # as sniffed from the bytes
    size: int
    sha256: str

    @property
    def key(self) -> str:
        return f"file:{self.sha256}"


Proof = TxProof | FileProof


def tx_proof(network: str, tx_hash: str, direction: str) -> TxProof:
    """A transaction proof, its hash checked by the network's format; InvalidValue names
    the field and the format expected."""
    checks = NETWORKS.get(network.strip().lower())
    if checks is None:
        raise InvalidValue("network", f"{network!r}: give one of {', '.join(NETWORKS)}")
    check, problem = checks.checks["hash"]
    cleaned = tx_hash.strip()
    if not check(cleaned):
        raise InvalidValue("hash", problem)
    try:
        way = Direction(direction.strip().lower())
    except ValueError:
        raise InvalidValue("direction", "give deposit or withdrawal") from None
    return TxProof(network.strip().lower(), cleaned.lower(), way)


# --- files ---------------------------------------------------------------------------------

# Magic numbers: the type is read from the bytes, since a name or a declared type is only
# what the sender says. The last entries are never accepted; they are named so that the
# refusal says what the file is.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"%PDF-", "application/pdf"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"MZ", "application/x-msdownload"),
    (b"\x7fELF", "application/x-executable"),
    (b"PK\x03\x04", "application/zip"),
)
_EXTENSIONS = {
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "application/pdf": (".pdf",),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
}


def sniffed_type(data: bytes) -> str | None:
    """The content type the bytes' magic number shows, or None when unknown."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in _MAGIC if data.startswith(magic)), None)


def check_file(
    rules: ProofRules, data: bytes, *, declared_type: str, name: str, kind: str
) -> FileProof:
    """A file proof from the bytes a customer sent: within the size limit, of an accepted
    type as its bytes show, and neither the declared type nor the name's extension saying
    otherwise (a PNG named .exe is a slip or a trick; either way it is not taken).
    InvalidValue says what is wrong and what is accepted."""
    try:
        file_kind = FileKind(kind.strip().lower())
    except ValueError:
        raise InvalidValue("kind", f"give one of {', '.join(FileKind)}") from None
    accepted = ", ".join(sorted(rules.content_types))
    if not data:
        raise InvalidValue("file", "is empty; attach the screenshot or statement")
    if len(data) > rules.max_file_bytes:
        raise InvalidValue(
            "file",
            f"is {len(data):,} bytes; the most accepted is {rules.max_file_bytes:,} "
            "(crop the screenshot or send the statement's relevant page)",
        )
    actual = sniffed_type(data)
    if actual is None or actual not in rules.content_types:
        what = f"a {actual} file" if actual else "of a type we cannot recognise"
        raise InvalidValue("file", f"is {what}; send one of {accepted}")
    declared = declared_type.partition(";")[0].strip().lower()
    if declared and declared not in (actual, "application/octet-stream"):
        raise InvalidValue("content_type", f"says {declared} but the file is {actual}")
    extension = PurePosixPath(name.strip().replace("\\", "/")).suffix.lower()
    if extension and extension not in _EXTENSIONS.get(actual, ()):
        raise InvalidValue(
            "name", f"ends {extension} but the file is {actual}; send it under its own type"
        )
    return FileProof(file_kind, actual, len(data), hashlib.sha256(data).hexdigest())


# --- personal data -------------------------------------------------------------------------

PERSONAL_DATA_RULE = (
    "we never ask for identity documents, passports, ID or national numbers, dates of birth "
    "or selfies, and do not take them: proof of ownership is by transaction hashes or "
    "screenshots of the account's own movements; remove this field"
)
# Field names, as words (split at case changes and separators, lower case). A field is
# refused when one of its words is one of these ...
_PERSONAL_WORDS = frozenset(
    {
        "passport",
        "passports",
        "selfie",
        "selfies",
        "dob",
        "ssn",
        "birthdate",
        "birthday",
        "dateofbirth",
        "nationality",
        "idcard",
        "idnumber",
        "idscan",
        "license",
        "licence",
    }
)
# ... or when its words, run together, hold one of these.
_PERSONAL_RUNS = (
    "dateofbirth",
    "birthdate",
    "idnumber",
    "idcard",
    "iddocument",
    "idscan",
    "idphoto",
    "identitydoc",
    "identitycard",
    "identitynumber",
    "identityproof",
    "proofofidentity",
    "nationalid",
    "nationalnumber",
    "nationalinsurance",
    "socialsecurity",
    "personalnumber",
    "taxnumber",
    "taxid",
    "driverslicen",
    "drivinglicen",
    "governmentid",
    "facephoto",
    "photoid",
)
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _words(name: str) -> list[str]:
    """`dateOfBirth` -> date, of, birth; `ID_number` -> id, number; `DOB` -> dob."""
    return [w.lower() for w in _WORD.findall(name)]


def is_personal_data_field(name: str) -> bool:
    words = _words(name)
    run = "".join(words)
    return bool(_PERSONAL_WORDS.intersection(words)) or any(p in run for p in _PERSONAL_RUNS)


def _personal_fields(value: object, where: str) -> Iterator[str]:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            path = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and is_personal_data_field(key):
                yield path
            else:
                yield from _personal_fields(inner, path)
    elif isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            yield from _personal_fields(inner, f"{where}[{index}]")


def refuse_personal_data(fields: Mapping[str, object]) -> None:
    """Raise ContextRefused naming every field (at any depth) whose name asks for personal
    data, each with the rule; nothing otherwise."""
    found = list(_personal_fields(fields, ""))
    if found:
        raise ContextRefused(FieldProblem(path, PERSONAL_DATA_RULE) for path in found)
