"""A task page sends nothing out of the browser by any route: real UDP, TCP and mDNS listeners count what arrives.

Request routing and the dead proxy cover what goes through Chromium's network stack (tests in
test_web_runtime.py); this file covers the rest: WebRTC (STUN, TURN, remote ICE candidates, ``.local``
names resolved by multicast DNS), WebTransport, speculative fetches, DNS prefetch and workers.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import threading
import time
from typing import Any, ClassVar

import psutil

from multiverse.envs.randomization import Choice, Param, ParamSpace
from multiverse.envs.web.env import WebEnv
from multiverse.envs.web.task import Observation, Outcome, TaskPage, WebParams, WebTask, page

MDNS_GROUP, MDNS_PORT = "224.0.0.251", 5353
#: what Chromium's own mDNS packets name: the probe's names, a name the resolver rules mapped, its host candidates
CHROMIUM_MDNS = re.compile(rb"mvprobe|NOTFOUND|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-")


class Listeners:
    """A UDP and a TCP socket on each local address (loopback, this machine's other IPv4 addresses, ::1), and a
    member of the mDNS group; every datagram and connection that arrives is kept in ``hits``."""

    def __init__(self) -> None:
        self.hits: list[tuple[str, str, bytes]] = []
        self.socks: list[socket.socket] = []
        self.targets: list[dict[str, Any]] = []
        self.local = {a.address.split("%")[0] for addrs in psutil.net_if_addrs().values() for a in addrs}
        v4 = [a.address for addrs in psutil.net_if_addrs().values() for a in addrs if a.family == socket.AF_INET]
        others = [a for a in v4 if not a.startswith("127.")][:2]
        for host in ["127.0.0.1", *others, "::1"]:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            try:
                udp = self._bind(family, socket.SOCK_DGRAM, (host, 0))
            except OSError:  # no IPv6 loopback here
                continue
            tcp = self._bind(family, socket.SOCK_STREAM, (host, 0))
            tcp.listen(16)
            url_host = f"[{host}]" if family == socket.AF_INET6 else host
            self.targets.append({"host": host, "url": url_host, "udp": udp.getsockname()[1], "tcp": tcp.getsockname()[1]})
            threading.Thread(target=self._recv, args=(udp, f"udp {host}"), daemon=True).start()
            threading.Thread(target=self._accept, args=(tcp, f"tcp {host}"), daemon=True).start()
        self._join_mdns(others)

    def _bind(self, family: int, kind: int, addr: tuple[str, int]) -> socket.socket:
        s = socket.socket(family, kind)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(addr)
        s.settimeout(0.2)
        self.socks.append(s)
        return s

    def _join_mdns(self, interfaces: list[str]) -> None:
        """Multicast loops back to members on the sending host, so Chromium's mDNS queries and announcements arrive here.

        An interface without multicast cannot be joined, and Chromium cannot send mDNS through it either."""
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # shared with an mDNS daemon, if one runs
        s.bind((MDNS_GROUP, MDNS_PORT))
        s.settimeout(0.2)
        for ifa in interfaces or ["0.0.0.0"]:
            try:
                s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(MDNS_GROUP) + socket.inet_aton(ifa))
            except OSError:
                pass
        self.socks.append(s)
        threading.Thread(target=self._recv, args=(s, "mdns"), daemon=True).start()

    def _recv(self, s: socket.socket, what: str) -> None:
        while s.fileno() >= 0:
            try:
                data, src = s.recvfrom(65535)
            except OSError:
                continue
            # other hosts' and daemons' mDNS traffic is not the page's
            if what != "mdns" or (src[0] in self.local and CHROMIUM_MDNS.search(data)):
                self.hits.append((what, str(src[0]), data[:80]))

    def _accept(self, s: socket.socket, what: str) -> None:
        while s.fileno() >= 0:
            try:
                conn, src = s.accept()
            except OSError:
                continue
            self.hits.append((what, str(src[0]), b""))
            conn.close()

    def close(self) -> None:
        for s in self.socks:
            s.close()


#: every way out a page has that does not go through request routing, tried against each listener
PROBE_JS = r"""
const done = (k, v) => mv.set(k, v);
for (const t of TARGETS) {
  const h = t.host, u = t.url, udp = t.udp, tcp = t.tcp;
  (async () => {  // WebRTC: STUN and TURN servers at the listeners, and remote candidates pointing at them
    const pc = new RTCPeerConnection({iceServers: [
      {urls: `stun:${u}:${udp}`}, {urls: `stun:mvprobe-stun.example:${udp}`},
      {urls: [`turn:${u}:${udp}?transport=udp`, `turn:${u}:${tcp}?transport=tcp`], username: 'mvprobe', credential: 'x'}]});
    pc.createDataChannel('mvprobe');
    await pc.setLocalDescription(await pc.createOffer());
    const peer = new RTCPeerConnection();
    await peer.setRemoteDescription(pc.localDescription);
    await peer.setLocalDescription(await peer.createAnswer());
    await pc.setRemoteDescription(peer.localDescription);
    for (const c of [`1 1 udp 2122260223 ${h} ${udp} typ host`, `2 1 tcp 1518280447 ${h} ${tcp} typ host tcptype passive`,
                     `3 1 udp 2122260223 mvprobe-${udp}.local ${udp} typ host`])
      await pc.addIceCandidate({candidate: 'candidate:' + c, sdpMid: '0', sdpMLineIndex: 0});
    return 'tried';
  })().then(v => done(`rtc ${h}`, v), e => done(`rtc ${h}`, 'error ' + e));
  try { new WebTransport(`https://${u}:${udp}/`).ready.catch(() => {}); } catch (e) {}  // QUIC (absent on http pages)
  fetch(`http://${u}:${tcp}/fetch`).catch(() => {});
  fetch(`https://${u}:${tcp}/fetch`).catch(() => {});
  new EventSource(`http://${u}:${tcp}/events`);
  navigator.sendBeacon(`http://${u}:${tcp}/beacon`, 'mvprobe');
  try { new WebSocket(`ws://${u}:${tcp}/ws`); } catch (e) {}
  new Image().src = `http://${u}:${tcp}/img`;
  for (const [rel, href] of [['preconnect', `http://${u}:${tcp}/`], ['prefetch', `http://${u}:${tcp}/prefetch`],
                             ['dns-prefetch', `http://mvprobe-dns-${udp}.example/`]]) {
    const link = document.createElement('link'); link.rel = rel; link.href = href; document.head.append(link);
  }
  const rules = document.createElement('script'); rules.type = 'speculationrules';
  rules.textContent = JSON.stringify({prefetch: [{source: 'list', urls: [`http://${u}:${tcp}/speculation`]}]});
  document.head.append(rules);
  const inWorker = `fetch('http://${u}:${tcp}/worker').catch(() => {});
    try { new WebSocket('ws://${u}:${tcp}/worker-ws'); } catch (e) {}
    if (self.RTCPeerConnection) new RTCPeerConnection({iceServers: [{urls: 'stun:${u}:${udp}'}]}).createOffer();`;
  const blob = URL.createObjectURL(new Blob([inWorker], {type: 'text/javascript'}));
  new Worker(blob);
  try { new SharedWorker(blob); } catch (e) {}
}
"""


@dataclasses.dataclass(frozen=True)
class _Params(WebParams):
    probe: str = "a"


class EscapeProbe(WebTask):
    """A page that tries every route out at once (targets filled in by the test)."""

    PARAM_SPACE = ParamSpace(_Params, probe=Param(Choice(("a",)), Choice(("b",))))
    targets: ClassVar[list[dict[str, Any]]] = []

    def setup(self, rng, params) -> TaskPage:
        script = f"const TARGETS = {json.dumps(self.targets)};\n{PROBE_JS}"
        return TaskPage(page(params, "<p>probe</p>", script=script), "Probe the sandbox.", {})

    def validate(self, instance: dict[str, Any], state: Any) -> Outcome:
        return Outcome()

    def oracle(self, instance: dict[str, Any], obs: Observation) -> str:
        return "noop()"


def test_no_packet_connection_or_dns_query_leaves_a_task_page() -> None:
    listeners = Listeners()
    task = EscapeProbe()
    task.targets = listeners.targets
    env = WebEnv(task)
    try:
        env.reset(seed=0)
        expected = {f"rtc {t['host']}" for t in listeners.targets}
        state: dict[str, Any] = {}
        for _ in range(40):  # each step runs the page a little; the WebRTC attempts finish within a few
            env.step("noop()")
            state = env.observation.state or {}
            if expected <= set(state):
                break
        assert expected <= set(state), f"WebRTC attempts that never finished: {expected - set(state)}"
        # ICE checks and STUN retransmit on the wall clock (~100 datagrams in 6 s when they got out)
        time.sleep(1.5)
        env.step("noop()")
        assert listeners.hits == [], f"{len(listeners.hits)} packets or connections got out: {listeners.hits[:5]}"
    finally:
        env.close()
        listeners.close()
