"""Schemathesis hooks for the vswitch REST API (api/tests/schemathesis.rs loads them through
SCHEMATHESIS_HOOKS): what JSON Schema cannot say about a request, made true of the generated
ones before they are sent.

A port's `gateway` must be another address on its `ip` subnet (the OpenAPI document says so
in words). When a body has a valid `ip` and a valid `gateway`, the gateway is replaced by the
first other address of that subnet, or dropped for a /32, which has none. Anything else is
left alone, so a request made invalid on purpose stays invalid.
"""

import ipaddress

import schemathesis


def _other_address_on_subnet(cidr):
    iface = ipaddress.IPv4Interface(cidr)
    for addr in iface.network:
        if addr != iface.ip:
            return str(addr)
    return None


@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if not isinstance(body, dict):
        return
    ip, gateway = body.get("ip"), body.get("gateway")
    if not isinstance(ip, str) or not isinstance(gateway, str):
        return
    try:
        # The switch reads the prefix length as a u8: "+24" and "024" are 24.
        addr, _, length = ip.partition("/")
        cidr = f"{addr}/{int(length)}"
        ipaddress.IPv4Interface(cidr)
        ipaddress.IPv4Address(gateway)
    except ValueError:
        return
    other = _other_address_on_subnet(cidr)
    if other is None:
        del body["gateway"]
    else:
        body["gateway"] = other
