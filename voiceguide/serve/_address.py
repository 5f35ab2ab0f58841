"""Where a phone finds the server: whether the host is local only, the URL to open, and that URL as a QR code."""

from __future__ import annotations

import ipaddress
import socket


def is_local(host: str) -> bool:
    """Whether ``host`` is reachable from this computer only."""
    return host in ("localhost", "::1") or host.startswith("127.")


def lan_address() -> str | None:
    """This computer's address on its local network, as a phone on the same Wi-Fi would reach it.

    Connecting a UDP socket sends no packet; it only makes the system pick the
    interface it would route through, whose address is the one we want.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere real
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith(("127.", "0.")) else address


def every_interface(host: str) -> bool:
    """Whether ``host`` means every interface of this computer, however it is written: 0.0.0.0, 0, ::, [::]."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        pass
    try:  # the short forms the system takes for an IPv4 address, as it binds them: 0, 0.0
        return socket.inet_aton(host) == bytes(4)
    except OSError:
        return host == ""


def url_for(host: str, port: int) -> str:
    """The address to open: the LAN address when serving on every interface."""
    if every_interface(host):
        host = lan_address() or "localhost"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def qr_code(url: str) -> str:
    """The URL as a QR code drawn with block characters, for a phone's camera."""
    import io

    import segno

    text = io.StringIO()
    segno.make(url, error="m").terminal(out=text, compact=True)
    return text.getvalue()
