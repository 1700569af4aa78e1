"""Start the LocalStack runtime in the foreground (``python -m
zerofn_localstack_plugin.launch``), keeping every file it writes inside the
run's own directory and every connection on loopback.

Files: LocalStack's S3 store (which its Lambda uses to hold function code)
writes to a fixed /tmp/localstack-s3-storage; ZEROFN_S3_STORAGE_DIR moves it,
so parallel instances do not share it and nothing is left in /tmp. Everything
else follows TMPDIR, FILESYSTEM_ROOT and HOME (see ../../start.sh), once
LocalStack runs in host mode (OVERRIDE_IN_DOCKER=0, the default set here).

Network: LocalStack's internal clients name itself by hostnames under
localhost.localstack.cloud (e.g. s3.localhost.localstack.cloud for the Lambda
code bucket), which public DNS maps to 127.0.0.1; asking the machine's
resolver would send a query off the machine, and fail where there is no DNS.
Unless ZEROFN_LOOPBACK_ONLY=0, name lookups are answered here instead:
localhost and *.localhost.localstack.cloud are 127.0.0.1, IP literals are
themselves, and any other name fails as unknown. Connections to addresses
other than loopback (or Unix sockets) fail with ENETUNREACH. Both are logged.
"""

import errno
import ipaddress
import logging
import os
import socket

LOG = logging.getLogger("zerofn.loopback")

LOOPBACK_NAMES = ("localhost", "localhost.localstack.cloud")


def _is_loopback_name(host):
    h = host.rstrip(".").lower()
    return any(h == n or h.endswith("." + n) for n in LOOPBACK_NAMES)


def _literal(host):
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def guard_loopback():
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host is None or isinstance(host, (bytes, bytearray)):
            host = host.decode() if host else host
        if host is None or _literal(host) is not None:
            return real_getaddrinfo(host, port, family, type, proto, flags)
        if _is_loopback_name(host):
            want6 = family == socket.AF_INET6
            return real_getaddrinfo("::1" if want6 else "127.0.0.1", port, family, type, proto, flags)
        LOG.warning("zerofn: refused to resolve %r (loopback only)", host)
        raise socket.gaierror(socket.EAI_NONAME, f"zerofn stand-in resolves loopback names only: {host}")

    def gethostbyname(host):
        return getaddrinfo(host, None, socket.AF_INET)[0][4][0]

    def gethostbyname_ex(host):
        return host, [], [gethostbyname(host)]

    def check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
            ip = _literal(str(address[0]))
            if ip is None:
                # a name: resolve it through the guard (raises if not loopback)
                ip = _literal(gethostbyname(address[0]))
            if ip is not None and getattr(ip, "ipv4_mapped", None):
                ip = ip.ipv4_mapped
            if ip is None or not ip.is_loopback:
                LOG.warning("zerofn: refused to connect to %r (loopback only)", address)
                raise OSError(errno.ENETUNREACH, f"zerofn stand-in connects to loopback only: {address!r}")

    def connect(self, address):
        check(self, address)
        return real_connect(self, address)

    def connect_ex(self, address):
        check(self, address)
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.gethostbyname = gethostbyname
    socket.gethostbyname_ex = gethostbyname_ex
    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex


def main():
    # /.dockerenv exists in this sandbox, so LocalStack would think it runs in
    # its own container: write to /var/lib/localstack and /tmp/localstack, and
    # ping 172.17.0.1 / 172.18.0.1 to find a Docker bridge. Host mode instead.
    os.environ.setdefault("OVERRIDE_IN_DOCKER", "0")
    if os.environ.get("ZEROFN_LOOPBACK_ONLY", "1") != "0":
        guard_loopback()
    storage = os.environ.get("ZEROFN_S3_STORAGE_DIR")
    if storage:
        from localstack.services.s3 import provider

        provider.DEFAULT_S3_TMP_DIR = storage
    from localstack.runtime.main import main as run

    run()


if __name__ == "__main__":
    main()
