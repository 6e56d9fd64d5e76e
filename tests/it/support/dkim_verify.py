"""Checks a DKIM signature with dkimpy, a verifier written apart from the
signer Shoulder uses (lettre's), so that the two cannot share a mistake.

Usage: dkim_verify.py NAME RECORD < message
NAME is where the key is published (selector._domainkey.domain) and RECORD
the TXT record there; every other DNS name has no record. Exits 0 when the
message's signature verifies, 1 when it does not (with dkimpy's reason on
stderr), 2 when the arguments are wrong.
"""

import logging
import sys

import dkim


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    name = sys.argv[1].rstrip(".").lower()
    record = sys.argv[2].encode("ascii")

    def lookup(asked, timeout=5):
        asked = asked.decode("ascii") if isinstance(asked, bytes) else asked
        return record if asked.rstrip(".").lower() == name else None

    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG)
    message = sys.stdin.buffer.read()
    verified = dkim.verify(message, logger=logging.getLogger("dkim"), dnsfunc=lookup)
    return 0 if verified else 1


if __name__ == "__main__":
    sys.exit(main())
