"""One ISP's censor, a process inside its router's namespace: the ISP's resolver (which lies
for the names it is told to), a DNS injector for queries to outside resolvers, the ISP's
blockpage server, a DPI box for TLS (reads the ClientHello's SNI) and plaintext HTTP (reads
the Host), and the packet rules (nftables) and shaping (a tbf qdisc) of the router itself.

Run as `python -m reachwatch.lab._censor CONFIG.json`. Each line on stdin is the complete set
of rules now in force (the lab sends a new one when the simulated clock crosses a policy's
window); the daemon applies it and answers `ok`. It exits when stdin closes."""

from __future__ import annotations

import asyncio
import socket
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rrset
import orjson

from ._plan import BOGON
from ._servers import dns_endpoint, http_reply, pipe, read_head, serving

INJECT_PORT, TLS_PORT, HTTP_PORT = 5353, 8443, 8080
SO_ORIGINAL_DST = 80
BLOCKPAGE = (
    b"<html><head><title>451 Unavailable For Legal Reasons</title></head><body>"
    b"<h1>451 Unavailable For Legal Reasons</h1><p>The page you have requested has been "
    b"blocked, by order of the authorities.</p></body></html>"
)  # matches OONI's national-scope fingerprint ooni.in_0, so the pipeline can confirm it
UPSTREAM_TRIES, UPSTREAM_TIMEOUT = 3, 1.0  # a resolver asks again rather than wait long
SILENCE_LIMIT = 60.0  # a silenced connection is let go after this, so nothing runs forever
THROTTLE_RATE, THROTTLE_BURST, THROTTLE_LIMIT = "64kbit", "32kb", "3000"
"""8 KB/s after a 32 KB burst: a handshake and a page's head pass, a 512 KB page stalls. The
queue holds two packets: a long one would keep a stalled fetch's backlog for seconds after it
ended, and the next connection's SYN-ACK would wait behind it."""


class Censor:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.rules: dict[str, list[Any]] = {}
        self.cached: dict[tuple[str, int], dns.message.Message] = {}
        self.asking: dict[tuple[str, int], asyncio.Task[dns.message.Message | None]] = {}

    def names(self, technique: str) -> set[str]:
        return {str(n).lower() for n in self.rules.get(technique, ()) if n}

    # --- DNS ------------------------------------------------------------------------------

    async def answer(self, data: bytes, techniques: tuple[str, ...]) -> bytes | None:
        """The reply to a query: a lie if its name is censored by one of `techniques`, else
        the real answer from the lab's DNS, cached as an ISP's resolver caches it (the lab's
        zone does not change while it runs; the lies are decided afresh for every query).
        Forwarding every lookup made the lab's DNS the bottleneck: the demo's 24 simulated runs
        at once waited 1.4 s for a median lookup on a busy machine, and 5% timed out, which
        the pipeline rightly judged DNS blocking where the scenario has none. None when the
        lab's DNS did not answer: the client then times out, as it would."""
        try:
            query = dns.message.from_wire(data)
            name = query.question[0].name.to_text().rstrip(".").lower()
        except Exception:
            return None
        for technique in techniques:
            if name in self.names(technique):
                reply = dns.message.make_response(query)
                if technique == "dns.nxdomain":
                    reply.set_rcode(dns.rcode.NXDOMAIN)
                elif query.question[0].rdtype == 1:
                    lie = self.config["blockpage"] if technique == "dns.wrong" else BOGON
                    reply.answer.append(dns.rrset.from_text(name + ".", 60, "IN", "A", lie))
                return reply.to_wire()
        key = (name, query.question[0].rdtype)
        real = self.cached.get(key)
        if real is None:
            asking = self.asking.get(key)
            if asking is None:
                asking = self.asking[key] = asyncio.create_task(self._ask(key, query))
            real = await asyncio.shield(asking)
            if real is None:
                return None
        real.id = query.id
        return real.to_wire()

    async def _ask(
        self, key: tuple[str, int], query: dns.message.Message
    ) -> dns.message.Message | None:
        """The lab's DNS's answer to `query`, asked once for everyone who asks the same name
        and type meanwhile (as resolvers do: the runs of a batch ask the same names at once),
        and asked again when it is slow to come."""
        try:
            for _ in range(UPSTREAM_TRIES):
                try:
                    real = await dns.asyncquery.udp(
                        query, self.config["dns"], timeout=UPSTREAM_TIMEOUT
                    )
                except (dns.exception.Timeout, TimeoutError):
                    continue
                except Exception:
                    return None
                self.cached[key] = real
                return real
            return None
        finally:
            del self.asking[key]

    # --- DPI --------------------------------------------------------------------------------

    async def tls_box(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A redirected TLS connection: reset or ignore it if the ClientHello names a censored
        host, else pass it on to where it was going."""
        try:
            hello = await asyncio.wait_for(_read_record(reader), 10)
            sni = server_name(hello)
            if sni in self.names("tls.sni-reset"):
                _reset(writer)
                return
            if sni in self.names("tls.sni-silence"):
                await asyncio.wait_for(reader.read(), SILENCE_LIMIT)
                return
            await _forward(writer, hello, reader)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            writer.close()

    async def http_box(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A redirected HTTP connection: the blockpage for a censored Host, else on its way."""
        try:
            head = await read_head(reader, 10)
            if not head:
                return
            host = _host_of(head)
            if host in self.names("http.blockpage"):
                writer.write(http_reply("451 Unavailable For Legal Reasons", BLOCKPAGE))
                await writer.drain()
                return
            await _forward(writer, head, reader)
        except (ConnectionError, TimeoutError, OSError):
            pass
        finally:
            writer.close()

    async def blockpage(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The ISP's page for names its resolver points here (dns.wrong)."""
        try:
            if await read_head(reader, 10):
                writer.write(http_reply("451 Unavailable For Legal Reasons", BLOCKPAGE))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    # --- packets ----------------------------------------------------------------------------

    def apply(self, update: dict[str, Any]) -> None:
        """Make the router's nftables and qdisc say exactly what `update` says."""
        self.rules = update["rules"]
        lan = self.config["lan"]
        subprocess.run(["nft", "-f", "-"], input=self.ruleset(update), text=True, check=True,
                       capture_output=True)  # fmt: skip
        subprocess.run(["tc", "qdisc", "del", "dev", lan, "root"], capture_output=True,
                       check=False)  # fmt: skip
        throttled = self.rules["throttle"]
        if throttled:
            # a bucket per address: one throttled service does not starve another's packets
            tc = [
                f"qdisc add dev {lan} root handle 1: htb default 1",
                f"class add dev {lan} parent 1: classid 1:1 htb rate 10gbit quantum 60000",
            ]
            for number, address in enumerate(throttled, start=16):
                tc += [
                    f"class add dev {lan} parent 1: classid 1:{number:x} htb rate 10gbit "
                    "quantum 60000",
                    f"qdisc add dev {lan} parent 1:{number:x} tbf rate {THROTTLE_RATE} "
                    f"burst {THROTTLE_BURST} limit {THROTTLE_LIMIT}",
                    f"filter add dev {lan} parent 1: protocol ip prio 1 u32 match ip src "
                    f"{address}/32 flowid 1:{number:x}",
                ]
            subprocess.run(["tc", "-batch", "-"], input="\n".join(tc) + "\n", text=True,
                           check=True, capture_output=True)  # fmt: skip

    def ruleset(self, update: dict[str, Any]) -> str:
        rules, lan, gateway = update["rules"], self.config["lan"], self.config["gateway"]
        forward = []
        if rules["ip.blackhole"]:
            forward.append(f"ip daddr {{ {', '.join(rules['ip.blackhole'])} }} drop")
        for technique, match in (("tcp.refuse", "tcp flags & (syn | ack) == syn"),
                                 ("tcp.reset", "tcp flags & psh == psh")):  # fmt: skip
            if rules[technique]:
                pairs = ", ".join(f"{a} . {p}" for a, p in rules[technique])
                forward.append(f"ip daddr . tcp dport {{ {pairs} }} {match} reject with tcp reset")
        if rules["udp.drop"]:
            pairs = ", ".join(f"{a} . {p}" for a, p in rules["udp.drop"])
            forward.append(f"ip daddr . udp dport {{ {pairs} }} drop")
        nat = []
        if rules["dns.inject"]:
            nat.append(f'iifname "{lan}" udp dport 53 ip daddr != {gateway} '
                       f"dnat to {gateway}:{INJECT_PORT}")  # fmt: skip
        if (rules["tls.sni-reset"] or rules["tls.sni-silence"]) and update["tls_ports"]:
            ports = ", ".join(map(str, update["tls_ports"]))
            nat.append(f'iifname "{lan}" tcp dport {{ {ports} }} redirect to :{TLS_PORT}')
        if rules["http.blockpage"] and update["http_ports"]:
            ports = ", ".join(map(str, update["http_ports"]))
            nat.append(f'iifname "{lan}" tcp dport {{ {ports} }} redirect to :{HTTP_PORT}')
        return "\n".join([
            "table inet rwlab", "delete table inet rwlab", "table ip rwlabnat",
            "delete table ip rwlabnat",
            "table inet rwlab {", "  chain forward {",
            "    type filter hook forward priority 0; policy accept;",
            *(f"    {line}" for line in forward), "  }", "}",
            "table ip rwlabnat {", "  chain prerouting {",
            "    type nat hook prerouting priority dstnat;",
            *(f"    {line}" for line in nat), "  }", "}", "",
        ])  # fmt: skip


class _Resolver(asyncio.DatagramProtocol):
    def __init__(self, censor: Censor, techniques: tuple[str, ...]) -> None:
        self.censor = censor
        self.techniques = techniques
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.create_task(self._reply(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = await self.censor.answer(data, self.techniques)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


def server_name(record: bytes) -> str | None:
    """The SNI of a TLS ClientHello record (RFC 8446 4.1.2, RFC 6066 3), lower case."""
    try:
        if record[0] != 22 or record[5] != 1:
            return None
        at = 9 + 2 + 32  # record and handshake headers, version, random
        at += 1 + record[at]  # session id
        at += 2 + struct.unpack("!H", record[at : at + 2])[0]  # cipher suites
        at += 1 + record[at]  # compression methods
        end = at + 2 + struct.unpack("!H", record[at : at + 2])[0]
        at += 2
        while at + 4 <= end:
            kind, length = struct.unpack("!HH", record[at : at + 4])
            if kind == 0:  # server_name: list length, type, name length, name
                size = struct.unpack("!H", record[at + 7 : at + 9])[0]
                return record[at + 9 : at + 9 + size].decode("ascii").lower()
            at += 4 + length
    except (IndexError, struct.error, UnicodeDecodeError):
        return None
    return None


async def _read_record(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(5)
    return header + await reader.readexactly(struct.unpack("!H", header[3:5])[0])


def _host_of(head: bytes) -> str | None:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"host":
            return value.strip().decode("latin-1").rsplit(":", 1)[0].lower()
    return None


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _forward(
    writer: asyncio.StreamWriter, first: bytes, reader: asyncio.StreamReader
) -> None:
    """Send a redirected connection on to its original destination, `first` bytes first."""
    raw = writer.get_extra_info("socket").getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    port, address = struct.unpack("!H", raw[2:4])[0], socket.inet_ntoa(raw[4:8])
    up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(address, port), 10)
    up_writer.write(first)
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def _main(path: str) -> None:
    config = orjson.loads(Path(path).read_bytes())
    censor = Censor(config)
    loop = asyncio.get_running_loop()
    gateway = config["gateway"]
    dns_lies = ("dns.nxdomain", "dns.bogon", "dns.wrong")
    resolver = await dns_endpoint(lambda: _Resolver(censor, dns_lies), gateway)
    injector = await dns_endpoint(lambda: _Resolver(censor, ("dns.inject",)), gateway, INJECT_PORT)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with (
        serving(censor.tls_box, "0.0.0.0", TLS_PORT),
        serving(censor.http_box, "0.0.0.0", HTTP_PORT),
        serving(censor.blockpage, config["blockpage"], 80),
    ):
        print("ready", flush=True)
        while line := await reader.readline():
            try:
                censor.apply(orjson.loads(line))
                print("ok", flush=True)
            except subprocess.CalledProcessError as exc:
                print(f"error {exc.cmd[0]}: {exc.stderr.strip()}", flush=True)
    resolver.close()
    injector.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1]))
