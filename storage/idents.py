"""Identities as the stores remember them: a 64-bit hash instead of GHL's id text.

A remembered identity is only ever compared for equality, so both backends keep the first 8
bytes of its BLAKE2b digest as a signed 64-bit integer (8 bytes instead of 20 to 40 of text,
in the row and in every index). Two identities of one scope collide with probability about
n² / 2⁶⁵ for n identities (3e-8 for a million); a collision would hide one new item from
that scope alone. Changing this function changes every stored key: it needs a migration.
"""

import hashlib


def ident_of(identity):
    """The signed 64-bit key of ``identity`` (a string)."""
    digest = hashlib.blake2b(identity.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
