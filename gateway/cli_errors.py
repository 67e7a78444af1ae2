"""What the command line says of an error it did not expect by name: an OSError as the file,
folder or address it was about, and for monitoring checks anything at all as UNKNOWN."""

from __future__ import annotations

import errno
import getpass

from gateway.errors import AddressError, FolderError, GatewayError


def unknown_reason(exc: Exception) -> str:
    """What a monitoring check says when it could not look: a check that fails says UNKNOWN
    (Nagios' 3), never a traceback and the 1 that means WARNING."""
    if isinstance(exc, GatewayError):
        return str(exc)
    if isinstance(exc, OSError):
        return str(os_error(exc))
    return f"{type(exc).__name__}: {exc}"


def os_error(exc: OSError) -> GatewayError:
    if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
        # asyncio's message names the address: "error while attempting to bind on address (…)"
        return AddressError(
            f"{exc}; check server.host and server.port of the axis's configuration (--listen of"
            " `pki serve`) and what else listens on this host"
        )
    if exc.filename is None:  # not about a path (a socket, a full disk met through a descriptor)
        return FolderError(f"{exc.strerror or exc}", where=None)
    return FolderError(_os_reason(exc), where=exc.filename)


def _os_reason(exc: OSError) -> str:
    who = getpass.getuser()
    return f"{exc.strerror or exc} for {who}; check the owner and mode of this path and of its folders"
