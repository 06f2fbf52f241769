"""Where webhooks may be sent: http(s) only, and never to an address that reaches inside.

A webhook makes the worker send requests to a URL an admin typed, from inside the network: a
classic server-side request forgery. Link-local addresses (cloud metadata services live at
169.254.169.254 and fd00:ec2::254), unspecified, multicast and reserved addresses are always
refused; private and loopback ones unless `INTERVENE_WEBHOOK_ALLOW_PRIVATE` (on-prem targets).
The name is resolved and every address checked when the subscription is created and again
before each delivery, so a name that later points inside is caught too.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


class BlockedTarget(ValueError):
    """The URL may not be a webhook target; the message says why."""


def address_problem(address: Address, *, allow_private: bool) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA:
        return "a cloud metadata address"
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified or address.is_multicast:
        return "not a unicast host address"
    if address.is_loopback or address.is_private:  # before is_reserved, which holds ::1 too
        if allow_private:
            return None
        return "private or loopback (set INTERVENE_WEBHOOK_ALLOW_PRIVATE=true for on-prem)"
    if address.is_reserved:
        return "a reserved address"
    return None


def check_target(url: str, *, allow_private: bool) -> None:
    """Raise BlockedTarget unless `url` is http(s) and every address its host resolves to may
    be reached."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BlockedTarget(f"only http and https targets are allowed, not {parts.scheme!r}")
    if not parts.hostname:
        raise BlockedTarget("the URL has no host")
    if parts.username or parts.password:
        raise BlockedTarget("credentials in the URL are not allowed; sign with the secret")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        found = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError, ValueError) as exc:
        raise BlockedTarget(f"{parts.hostname} does not resolve ({exc})") from None
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        problem = address_problem(address, allow_private=allow_private)
        if problem is not None:
            raise BlockedTarget(f"{parts.hostname} resolves to {address}, which is {problem}")
