"""A throwaway certificate authority and TLS servers for the tests.

``make_pki(dir)`` runs ``openssl`` (from PATH) to write a CA, a server certificate for
127.0.0.1/localhost signed by it, a client certificate signed by it, and a second, unrelated
CA (for "wrong CA" tests). ``TlsServer`` is a ``ServerProc`` that listens only on a TLS port
(``--port 0 --tls-port P``); its ``client()`` speaks TLS with the good CA.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from .servers import ServerProc

_EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")


@dataclass(frozen=True)
class Pki:
    """Paths of the files ``make_pki`` wrote."""

    dir: Path

    def __getattr__(self, name: str) -> str:  # ca_crt, server_key, client_crt, other_ca_crt...
        return str(self.dir / name.replace("_", ".", 1))


def openssl_bin() -> str | None:
    return shutil.which("openssl")


def _run(*args: str, cwd: Path) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(name: str, cwd: Path) -> None:
    _run("openssl", "req", "-x509", "-new", "-nodes", *_EC, "-keyout", f"{name}.key",
         "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN=fleetcache-test-{name}",
         cwd=cwd)  # fmt: skip


def _signed(name: str, cn: str, ca: str, cwd: Path, ext: str) -> None:
    (cwd / f"{name}.ext").write_text(ext + "\n")
    _run("openssl", "req", "-new", "-nodes", *_EC, "-keyout", f"{name}.key",
         "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=cwd)  # fmt: skip
    _run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt",
         "-CAkey", f"{ca}.key", "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
         "-extfile", f"{name}.ext", cwd=cwd)  # fmt: skip


def make_pki(directory: Path) -> Pki:
    """CA ``ca``, ``server`` (SAN IP:127.0.0.1, DNS:localhost), ``client`` (clientAuth), and
    an unrelated ``other`` CA, as ``<name>.crt``/``<name>.key`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    _ca("ca", directory)
    _ca("other", directory)
    san = "subjectAltName=IP:127.0.0.1,DNS:localhost"
    _signed(
        "server", "localhost", "ca", directory, san + "\nextendedKeyUsage=serverAuth,clientAuth"
    )
    _signed("client", "fleetcache-client", "ca", directory, "extendedKeyUsage=clientAuth")
    return Pki(directory)


def tls_args(pki: Pki, auth_clients: str = "no") -> tuple[str, ...]:
    """redis-server options for TLS with the test PKI (Redis 7.0: certificate, key, CA,
    ``tls-auth-clients yes|no|optional``)."""
    return (
        "--tls-cert-file", pki.server_crt,
        "--tls-key-file", pki.server_key,
        "--tls-ca-cert-file", pki.ca_crt,
        "--tls-auth-clients", auth_clients,
    )  # fmt: skip


class TlsServer(ServerProc):
    """A redis-server listening only on a TLS port (``port``); plain TCP is off.
    ``auth_clients``: ``tls-auth-clients`` (``"no"``, ``"yes"`` or ``"optional"``)."""

    def __init__(
        self, binary: str, pki: Pki, auth_clients: str = "no", more: Sequence[str] = ()
    ) -> None:
        super().__init__(binary)
        self.pki = pki
        self.extra = (
            "--port", "0", "--tls-port", str(self.port),
            *tls_args(pki, auth_clients), *more,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.pki.ca_crt}"

    def client(self, **kw: Any) -> redis.Redis:
        kw.setdefault("socket_timeout", 5)
        return redis.Redis(
            host="127.0.0.1", port=self.port, ssl=True, ssl_ca_certs=self.pki.ca_crt,
            ssl_certfile=self.pki.client_crt, ssl_keyfile=self.pki.client_key, **kw,
        )  # fmt: skip
