"""Keystead's ssh agent against OpenSSH's ssh-agent holding the same key.

Both agents run as their own processes; the same raw-socket client measures
sign round trips per second over one connection, and ``ssh-add -L`` wall time
is the median of many runs. Target: Keystead within 1.5x of OpenSSH on both.
``--key`` picks Ed25519 or an ECDSA curve; ``--idle N`` first opens N idle
connections to each agent from another process (both must keep serving).

    .venv/bin/python bench/ssh_agent.py [--key ecdsa-384] [--idle 500] [--signs N] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from keystead.adapters.ssh import _agent_protocol as proto
from keystead.adapters.ssh._keys import AgentKey, generate_device_key, load_private_key_file
from keystead.adapters.ssh._verify import verify_signature

TARGET = 1.5
CURVES = {"ecdsa-256": ec.SECP256R1, "ecdsa-384": ec.SECP384R1, "ecdsa-521": ec.SECP521R1}
HOLDER = """
import socket, sys
socks = []
for path in sys.argv[2:]:
    for _ in range(int(sys.argv[1])):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        socks.append(s)
print("ok", flush=True)
sys.stdin.read()
"""


def serve(key_file: str) -> None:
    """Child process: run Keystead's agent on the key and print its socket path."""
    from keystead.adapters.ssh.agent import SshAgent

    key = load_private_key_file(key_file)
    agent = SshAgent(lambda: [key])
    path = agent.bind()
    signal.signal(signal.SIGTERM, lambda *_: agent.shutdown(timeout=0))
    print(path, flush=True)
    agent.serve_forever()


def read_frame(s: socket.socket) -> bytes:
    data = s.recv(65536)
    while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("agent closed the connection")
        data += chunk
    return data[4:]


def signs_per_second(sock_path: str, blob: bytes, n: int) -> float:
    request = proto.encode_sign_request(blob, b"x" * 64)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(sock_path)
        s.sendall(request)  # warm up, and check the answer once
        verify_signature(blob, proto.parse_sign_response(read_frame(s)), b"x" * 64)
        start = time.perf_counter()
        for _ in range(n):
            s.sendall(request)
            read_frame(s)
        return n / (time.perf_counter() - start)


def ssh_add_ms(sock_path: str, runs: int, expected: str) -> float:
    env = dict(os.environ, SSH_AUTH_SOCK=sock_path)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        out = subprocess.run(["ssh-add", "-L"], env=env, capture_output=True, text=True)
        times.append((time.perf_counter() - start) * 1000)
        if out.returncode != 0 or out.stdout.split()[:2] != expected.split()[:2]:
            raise RuntimeError(f"ssh-add -L failed: {out.stderr}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--signs", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--key", choices=["ed25519", *CURVES], default="ed25519")
    parser.add_argument("--idle", type=int, default=0, help="idle connections held open")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    with tempfile.TemporaryDirectory(prefix="keystead-bench-") as tmp:
        key = (
            generate_device_key("bench@keystead")
            if args.key == "ed25519"
            else AgentKey(ec.generate_private_key(CURVES[args.key]()), "bench@keystead")
        )
        key_file = Path(tmp) / "id_key"
        key_file.write_bytes(key.private_openssh())
        key_file.chmod(0o600)
        openssh_sock = str(Path(tmp) / "openssh.sock")
        openssh = ["ssh-agent", "-D", "-a", openssh_sock]
        procs = [subprocess.Popen(openssh, stdout=subprocess.DEVNULL)]
        ours = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(key_file)], stdout=subprocess.PIPE, text=True
        )
        procs.append(ours)
        try:
            assert ours.stdout is not None
            keystead_sock = ours.stdout.readline().strip()
            for _ in range(100):
                if os.path.exists(openssh_sock):
                    break
                time.sleep(0.02)
            env = dict(os.environ, SSH_AUTH_SOCK=openssh_sock)
            subprocess.run(["ssh-add", "-q", str(key_file)], env=env, check=True)
            if args.idle:
                holder = subprocess.Popen(
                    [sys.executable, "-c", HOLDER, str(args.idle), openssh_sock, keystead_sock],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                )  # fmt: skip
                procs.append(holder)
                assert holder.stdout is not None and holder.stdout.readline() == "ok\n"
            agents = {"OpenSSH ssh-agent": openssh_sock, "Keystead agent": keystead_sock}
            results: dict[str, tuple[float, float]] = {}
            for name, path in agents.items():
                best = max(signs_per_second(path, key.public_blob, args.signs) for _ in range(3))
                results[name] = (best, ssh_add_ms(path, args.runs, key.public.line()))
        finally:
            for p in procs:
                p.terminate()
                p.wait(5)

    print(f"key {args.key}, {args.idle} idle connections open to each agent")
    print(f"{'agent':<20} {'sign round trips/s':>20} {'ssh-add -L ms (median)':>24}")
    for name, (rate, ms) in results.items():
        print(f"{name:<20} {rate:>20,.0f} {ms:>24.2f}")
    (o_rate, o_ms), (k_rate, k_ms) = results.values()
    sign_ratio, list_ratio = o_rate / k_rate, k_ms / o_ms
    print(f"\nslowdown vs OpenSSH: signing {sign_ratio:.2f}x, ssh-add -L {list_ratio:.2f}x")
    ok = sign_ratio <= TARGET and list_ratio <= TARGET
    print(f"target (within {TARGET}x on both): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
