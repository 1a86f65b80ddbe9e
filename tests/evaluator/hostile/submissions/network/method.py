"""Reaches out: PostgreSQL, Redis and RabbitMQ on the loopback and through their unix sockets,
the container engine's socket, DNS, and addresses outside."""
import socket

from hostile import TARGETS, attempt, contained, use


def _tcp(host, port):
    with socket.create_connection((host, port), timeout=2) as s:
        return f"connected to {host}:{port}"


def _unix(path):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(2)
        s.connect(path)
        return f"connected to {path}"


def _udp_dns():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01",
                 ("8.8.8.8", 53))
        return s.recv(512)


def run(problem):
    steps = [("pg tcp", lambda: _tcp("127.0.0.1", 5432)),
             ("redis", lambda: _tcp("127.0.0.1", 6379)),
             ("rabbitmq", lambda: _tcp("127.0.0.1", 5672)),
             ("pg unix", lambda: _unix("/var/run/postgresql/.s.PGSQL.5432")),
             ("engine sock", lambda: _unix(TARGETS["engine_socket"])),
             ("docker sock", lambda: _unix("/var/run/docker.sock")),
             ("dns", lambda: socket.getaddrinfo("pypi.org", 443)),
             ("udp 8.8.8.8", _udp_dns),
             ("tcp 1.1.1.1", lambda: _tcp("1.1.1.1", 443))]
    for label, step in steps:
        loot = attempt(label, step)
        if loot:
            return use(loot, problem)
    contained()
