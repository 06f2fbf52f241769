"""Where webhooks may be sent: http(s) only, and never to an address that reaches inside.

A webhook makes the worker send requests to a URL an admin typed, from inside the network: a
classic server-side request forgery. Link-local addresses (cloud metadata services live at
169.254.169.254 and fd00:ec2::254), "this network" (0.0.0.0/8, which Linux delivers to the host
itself), unspecified, multicast, broadcast and reserved addresses are always refused; private,
loopback and other non-global ones (carrier-grade NAT, site-local, ...) unless
`INTERVENE_WEBHOOK_ALLOW_PRIVATE` (on-prem targets).

An IPv6 address that stands for an IPv4 one is judged by that IPv4 address too: IPv4-mapped
(::ffff:0:0/96), IPv4-translated (::ffff:0:0:0/96), IPv4-compatible (::/96), NAT64's well-known
prefix (64:ff9b::/96), 6to4 (2002::/16) and Teredo (2001::/32, its server and its client). The
local-use NAT64 prefix (64:ff9b:1::/48) is refused outright: where the IPv4 address sits in it
depends on the operator's prefix length, so what it reaches cannot be told.

The name is resolved and every address checked when the subscription is created and again
before each delivery, so a name that later points inside is caught too.
"""

import ipaddress
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


# Refused whatever the setting (besides link-local, multicast and the unspecified address).
NEVER: tuple[tuple[Network, str], ...] = (
    (ipaddress.ip_network("0.0.0.0/8"), '"this network" (0.0.0.0/8), not a host'),
    (ipaddress.ip_network("240.0.0.0/4"), "reserved (240.0.0.0/4) or broadcast"),
    (
        ipaddress.ip_network("64:ff9b:1::/48"),
        "a local-use NAT64 address, whose IPv4 target cannot be told",
    ),
)
# Not global, whatever this Python's ipaddress says (3.11 calls site-local fec0::/10 global).
PRIVATE: tuple[Network, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in ("100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "fec0::/10")
)

# The forms that are only another way to write an IPv4 address: judged by it alone (the others,
# deprecated or tunnelled, are judged as IPv6 addresses too).
SPELLINGS = frozenset({"IPv4-mapped", "NAT64"})
_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedTarget(ValueError):
    """The URL may not be a webhook target; the message says why."""


def _embedded(address: ipaddress.IPv6Address) -> Iterator[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses `address` stands for or tunnels to, each with the form's name."""
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _MAPPED:
        yield "IPv4-mapped", low32
    elif address in _TRANSLATED:
        yield "IPv4-translated", low32
    elif address in _COMPATIBLE and int(address) > 1:  # :: and ::1 are themselves
        yield "IPv4-compatible", low32
    elif address in _NAT64:
        yield "NAT64", low32
    elif address.sixtofour is not None:
        yield "6to4", address.sixtofour
    elif address.teredo is not None:
        server, client = address.teredo
        yield "Teredo (server)", server
        yield "Teredo (client)", client


def address_problem(address: Address, *, allow_private: bool) -> str | None:
    """Why `address` may not be sent to, or None."""
    if isinstance(address, ipaddress.IPv6Address):
        forms = list(_embedded(address))
        for form, inner in forms:
            if (problem := address_problem(inner, allow_private=allow_private)) is not None:
                return f"{form} for {inner}, which is {problem}"
        if forms and forms[0][0] in SPELLINGS:  # reaches the IPv4 address itself, found fine
            return None
    if address in METADATA:
        return "a cloud metadata address"
    for network, reason in NEVER:
        if address in network:
            return reason
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified or address.is_multicast:
        return "not a unicast host address"
    if (
        address.is_loopback
        or address.is_private
        or not address.is_global
        or any(address in network for network in PRIVATE)
    ):
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
