"""A local KMS-compatible endpoint for the KMS signer tests: moto's server with one behaviour corrected.

moto 5.2.5 ignores `MessageType=DIGEST` on `Sign` and `Verify` (its docs say DIGEST is not implemented): it hashes
the message again with SHA-256 and signs that. An Ethereum signer sends the 32-byte keccak digest as a DIGEST, so a
signature from an unpatched moto does not recover to the key's address. Real AWS KMS signs the given 32 bytes as the
digest. This launcher monkeypatches moto's KMS `Sign`/`Verify` handlers so that a DIGEST message is signed (and
verified) as the digest itself, as AWS does; nothing else of moto is changed. The tests that use it say so.

Run by testkit (`beatstream_testkit::kms`) with target/venv's Python (script/moto.sh installs it). Prints one line,
`listening on http://127.0.0.1:<port>`, then serves until its standard input closes (the test process ended).
"""

import base64
import logging
import sys

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from moto.kms import responses as kms_responses
from moto.kms import utils as kms_utils
from moto.kms.exceptions import ValidationException
from moto.moto_server.threaded_moto_server import ThreadedMotoServer


class Digest(bytes):
    """A message the caller sent with `MessageType=DIGEST`: already hashed, to be signed as it is."""


def _digest_aware(handler):
    """Wraps a `KmsResponse` handler so that a DIGEST message reaches the key marked as `Digest` bytes."""

    def wrapped(self):
        if self._get_param("MessageType") != "DIGEST":
            return handler(self)
        message = self._get_param("Message")
        # moto parses the blob to bytes; were it left as its base64 text, decode it.
        digest = Digest(base64.b64decode(message) if isinstance(message, str) else message)
        get_param = self._get_param
        self._get_param = lambda name, *a, **kw: (
            digest if name == "Message" else get_param(name, *a, **kw)
        )
        try:
            return handler(self)
        finally:
            del self._get_param

    return wrapped


_HASH_LENGTH = {"ECDSA_SHA_256": 32, "ECDSA_SHA_384": 48, "ECDSA_SHA_512": 64}


def _prehashed(key, message, signing_algorithm):
    """The ECDSA scheme for a DIGEST: AWS requires the digest to be as long as the algorithm's hash."""
    kms_utils.validate_signing_algorithm(signing_algorithm, key.valid_signing_algorithms)
    if len(message) != _HASH_LENGTH[signing_algorithm]:
        raise ValidationException(
            f"Digest is invalid length for algorithm {signing_algorithm}."
        )
    return ec.ECDSA(Prehashed(key._ECDSAPrivateKey__hash_algorithm(signing_algorithm)))


_ecdsa_sign = kms_utils.ECDSAPrivateKey.sign
_ecdsa_verify = kms_utils.ECDSAPrivateKey.verify


def _sign(self, message, signing_algorithm):
    if not isinstance(message, Digest):
        return _ecdsa_sign(self, message, signing_algorithm)
    return self.private_key.sign(bytes(message), _prehashed(self, message, signing_algorithm))


def _verify(self, message, signature, signing_algorithm):
    if not isinstance(message, Digest):
        return _ecdsa_verify(self, message, signature, signing_algorithm)
    scheme = _prehashed(self, message, signing_algorithm)
    try:
        self.private_key.public_key().verify(signature, bytes(message), scheme)
        return True
    except Exception:
        return False


# The correction: DIGEST signs (and verifies) the given digest, as AWS KMS does.
kms_responses.KmsResponse.sign = _digest_aware(kms_responses.KmsResponse.sign)
kms_responses.KmsResponse.verify = _digest_aware(kms_responses.KmsResponse.verify)
kms_utils.ECDSAPrivateKey.sign = _sign
kms_utils.ECDSAPrivateKey.verify = _verify


def main():
    # One line per request is noise in a test's output; errors still print.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(f"listening on http://{host}:{port}", flush=True)
    # Serve until the parent closes our standard input (or dies): no server outlives its test.
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
