"""A program that needs the python-data runtime: pandas reads the CSV it is given and matplotlib plots it."""

from __future__ import annotations

import struct

DATA_CSV = b"x,y\n1,1\n2,4\n3,9\n4,16\n"
PLOT_PROGRAM = """\
import pandas as pd
frame = pd.read_csv("data.csv")
axes = frame.plot(x="x", y="y", title="squares")
axes.figure.savefig("outputs/plot.png")
with open("outputs/report.html", "w") as report:
    report.write("<script>alert(document.domain)</script>")
print(int(frame["y"].sum()))
"""
PLOT_STDOUT = "30\n"


def png_size(data: bytes) -> tuple[int, int]:
    """A PNG's width and height from its IHDR chunk; AssertionError when `data` is not a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert data.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82")
    return width, height
