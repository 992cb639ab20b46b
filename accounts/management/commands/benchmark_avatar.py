"""Prints the peak memory of processing one avatar of the largest accepted size.

    manage.py benchmark_avatar

For each format and colour mode an upload may have, it writes an image of the
largest accepted size (4096 x 4096; WebP 2048 x 2048, under the 5 MB file limit),
then decodes, shrinks and re-encodes it (``accounts.images.process_avatar``, what
an upload costs beyond the request itself) in a fresh Python process, and prints
how much that process grew: the resident set size's high-water mark (Linux's
``VmHWM``, reset just before) minus the resident size before, and Python's own
allocations at their peak (``tracemalloc``; Pillow's pixel buffers are allocated
outside Python's allocator, so the RSS figure is the one that counts). The target
is at most 150 MB for the worst case. A benchmark, not a test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from PIL import Image

from accounts.images import MAX_SIDE, MAX_UPLOAD_BYTES, WEBP_MAX_SIDE

TARGET_MB = 150

CHILD = """
import io, json, sys, tracemalloc
import django
django.setup()
from PIL import Image
from accounts.images import process_avatar

def status_kb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])


warm = io.BytesIO()
Image.new("RGBA", (600, 600)).save(warm, format="PNG")
for fmt in ("JPEG", "WEBP"):
    Image.new("RGB", (8, 8)).save(io.BytesIO(), format=fmt)
process_avatar(io.BytesIO(warm.getvalue()))
data = open(sys.argv[1], "rb").read()
before = status_kb("VmRSS")
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")  # resets the high-water mark (VmHWM) to the current size
tracemalloc.start()
process_avatar(io.BytesIO(data), size=len(data))
_current, peak = tracemalloc.get_traced_memory()
print(json.dumps({"rss_kb": status_kb("VmHWM") - before, "python_bytes": peak}))
"""


def _gradient(mode: str, side: int) -> Image.Image:
    """A smooth picture in ``mode``: real pixels, yet small once compressed."""
    ramp = Image.linear_gradient("L").resize((side, side))
    other = ramp.transpose(Image.Transpose.ROTATE_90)
    flat = Image.new("L", (side, side), 96)
    if mode == "RGBA":
        return Image.merge("RGBA", (ramp, other, flat, ramp))
    if mode == "LA":
        return Image.merge("LA", (ramp, other))
    if mode == "I;16":
        return ramp.convert("I").point(lambda v: v * 257).convert("I;16")
    rgb = Image.merge("RGB", (ramp, other, flat))
    if mode == "P":
        return rgb.convert("P")
    if mode == "CMYK":
        return rgb.convert("CMYK")
    return rgb


CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("PNG RGBA", "PNG", "RGBA", {}),
    ("PNG RGB", "PNG", "RGB", {}),
    ("PNG grey + alpha", "PNG", "LA", {}),
    ("PNG palette + transparency", "PNG", "P", {"transparency": 0}),
    ("PNG 16-bit grey", "PNG", "I;16", {}),
    ("JPEG RGB", "JPEG", "RGB", {"quality": 90}),
    ("JPEG CMYK", "JPEG", "CMYK", {"quality": 90}),
    ("WebP RGBA", "WEBP", "RGBA", {"quality": 80}),
    ("WebP RGB", "WEBP", "RGB", {"quality": 80}),
]


class Command(BaseCommand):
    help = "Prints the peak memory of processing one avatar of the largest accepted size."
    requires_system_checks = ()  # no database needed

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(
            f"The largest accepted images, one fresh process each; target <= {TARGET_MB} MB"
        )
        self.stdout.write(
            f"{'image':28} {'pixels':>11} {'file KB':>8} {'peak RSS MB':>12} {'Python MB':>10}"
        )
        worst = 0.0
        with tempfile.TemporaryDirectory() as folder:
            for label, fmt, mode, save in CASES:
                path = Path(folder) / f"avatar.{fmt.lower()}"
                side = WEBP_MAX_SIDE if fmt == "WEBP" else MAX_SIDE
                _gradient(mode, side).save(path, format=fmt, **save)
                file_size = path.stat().st_size
                if file_size > MAX_UPLOAD_BYTES:
                    raise CommandError(f"{label}: {file_size} bytes is over the upload limit")
                result = subprocess.run(  # noqa: S603 - our own interpreter and code
                    [sys.executable, "-c", CHILD, str(path)],
                    cwd=settings.BASE_DIR,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if result.returncode != 0:
                    raise CommandError(f"{label}: {result.stderr.strip()}")
                figures = json.loads(result.stdout.strip().splitlines()[-1])
                rss_mb = figures["rss_kb"] / 1024
                worst = max(worst, rss_mb)
                self.stdout.write(
                    f"{label:28} {f'{side} x {side}':>11} {file_size / 1024:8.0f} {rss_mb:12.1f} "
                    f"{figures['python_bytes'] / 2**20:10.1f}"
                )
        verdict = "within" if worst <= TARGET_MB else "OVER"
        self.stdout.write(f"worst case: {worst:.1f} MB ({verdict} the {TARGET_MB} MB target)")
