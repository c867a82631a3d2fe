"""Tiny TCP reachability probe: probe.py HOST PORT [TIMEOUT]; prints OPEN/CLOSED/BLOCKED, exit 0 iff it connected."""
import socket
import sys

host, port = sys.argv[1], int(sys.argv[2])
timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 2.0
try:
    socket.create_connection((host, port), timeout=timeout).close()
except ConnectionRefusedError:
    print("REFUSED", flush=True)  # a RST came back: the network path exists
    sys.exit(2)
except OSError as e:
    print(f"BLOCKED {type(e).__name__}", flush=True)  # timeout: packets silently dropped
    sys.exit(1)
print("OPEN", flush=True)
