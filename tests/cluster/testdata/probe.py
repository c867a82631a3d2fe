"""TCP reachability probe used by the cluster proof tests.

    probe.py --expect open|closed --within SECONDS HOST:PORT [HOST:PORT ...]

Tries every target (1.5 s connect timeout) until all of them match the expectation or SECONDS pass, then prints
one JSON object {"HOST:PORT": "open" | "refused" | "timeout" | "error:..."} and exits 0. "closed" means anything but
"open". Retrying inside the pod absorbs the moment a policy enforcer needs to program a new pod.
"""

import argparse
import json
import socket
import time


def probe(target):
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1.5).close()
        return "open"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timeout"
    except OSError as e:
        return f"error:{e.errno}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--expect", choices=["open", "closed"], required=True)
    ap.add_argument("--within", type=float, default=20.0)
    ap.add_argument("targets", nargs="+")
    a = ap.parse_args()
    deadline = time.monotonic() + a.within
    while True:
        res = {t: probe(t) for t in a.targets}
        ok = all((r == "open") == (a.expect == "open") for r in res.values())
        if ok or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    print(json.dumps(res), flush=True)


main()
