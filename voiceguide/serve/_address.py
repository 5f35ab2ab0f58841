"""Where a phone finds the server: whether the host is local only, the URL to open, the address a request came
to, and URLs as QR codes."""

from __future__ import annotations

import ipaddress
import re
import socket

# host[:port] as a Host header carries it: a name, an IPv4 address or a bracketed IPv6 address.
_HOST = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9.-]{1,253}))(?::(?P<port>[0-9]{1,5}))?")
_LABEL = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


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


def base_from_host(header: str | None) -> str | None:
    """``http://`` and the host and port a client asked for in its Host header, when that is a plain host name or
    address with an optional port; None for anything else (missing, a path, a user, spaces, a bad port).

    The feed's URLs are built from it, so that they lead where the phone already reached this server.
    """
    match = _HOST.fullmatch(header.strip()) if header else None
    if match is None:
        return None
    port = match["port"]
    if port is not None and not 0 < int(port) < 65536:
        return None
    if match["v6"] is not None:
        try:
            ipaddress.IPv6Address(match["v6"])
        except ValueError:
            return None
    elif not all(_LABEL.fullmatch(label) for label in match["name"].removesuffix(".").split(".")):
        return None
    return f"http://{match.group(0).lower()}"


def qr_code(url: str) -> str:
    """The URL as a QR code drawn with block characters, for a phone's camera."""
    import io

    import segno

    text = io.StringIO()
    segno.make(url, error="m").terminal(out=text, compact=True)
    return text.getvalue()


def qr_codes(codes: list[tuple[str, str]], columns: int) -> str:
    """Several URLs as QR codes, each under its label: side by side where ``columns`` leave room, else one under
    the other. Each keeps its own quiet zone, so a camera reads either."""
    drawn = [[label, *qr_code(url).splitlines()] for label, url in codes]
    widths = [max(len(line) for line in lines) for lines in drawn]
    gap = "  "
    if sum(widths) + len(gap) * (len(drawn) - 1) > columns:
        return "".join(line + "\n" for lines in drawn for line in lines)
    height = max(len(lines) for lines in drawn)
    rows = (gap.join((lines[row] if row < len(lines) else "").ljust(width) for lines, width in zip(drawn, widths))
            for row in range(height))
    return "".join(row.rstrip() + "\n" for row in rows)
