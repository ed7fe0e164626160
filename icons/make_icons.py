#!/usr/bin/env python3
"""Draws Diarist's icons with the standard library only (no PIL, no ImageMagick).

icon.png      512x512 app icon: a rounded square with two speaker lanes of turns.
tray.png       44x44 monochrome template icon for the menu bar (black + alpha;
               macOS tints template icons itself).
tray-recording.png  the same while recording: the lanes squeezed left of a
               solid "record" dot, a shape that reads without colour.
Both are RGBA PNGs, as Tauri requires. Run: python3 icons/make_icons.py
"""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SS = 4  # supersampling per axis, for smooth edges


def png(path, w, h, rgba):
    raw = b"".join(b"\x00" + bytes(rgba[y * w * 4:(y + 1) * w * 4]) for y in range(h))

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def in_rrect(x, y, x0, y0, x1, y1, r):
    """Whether (x, y) lies inside the rounded rectangle."""
    if x < x0 or x > x1 or y < y0 or y > y1:
        return False
    cx = min(max(x, x0 + r), x1 - r)
    cy = min(max(y, y0 + r), y1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def render(size, shade):
    """shade(x, y) in unit coordinates -> (r, g, b, a) floats or None."""
    out = bytearray(size * size * 4)
    n = SS * SS
    for py in range(size):
        for px in range(size):
            acc = [0.0, 0.0, 0.0, 0.0]
            for sy in range(SS):
                for sx in range(SS):
                    c = shade((px + (sx + 0.5) / SS) / size, (py + (sy + 0.5) / SS) / size)
                    if c:
                        r, g, b, a = c
                        acc[0] += r * a
                        acc[1] += g * a
                        acc[2] += b * a
                        acc[3] += a
            a = acc[3] / n
            i = (py * size + px) * 4
            if acc[3] > 0:
                out[i:i + 3] = bytes(round(min(255, acc[k] / acc[3])) for k in range(3))
            out[i + 3] = round(a * 255)
    return out


# Two lanes of turns, as on Diarist's timeline (x0, x1 in unit coordinates).
LANE_A = [(0.22, 0.44), (0.60, 0.78)]
LANE_B = [(0.36, 0.62), (0.69, 0.82)]


def app_icon(x, y):
    if not in_rrect(x, y, 0.06, 0.06, 0.94, 0.94, 0.2):
        return None
    t = (x + y) / 2  # diagonal gradient, calm indigo to teal
    bg = (0x4B + (0x1F - 0x4B) * t, 0x5B + (0x9E - 0x5B) * t, 0xD6 + (0xA8 - 0xD6) * t)
    for lane_y, turns, colour in ((0.40, LANE_A, (255, 255, 255)), (0.60, LANE_B, (0xFF, 0xE3, 0xA3))):
        for x0, x1 in turns:
            if in_rrect(x, y, x0, lane_y - 0.055, x1, lane_y + 0.055, 0.055):
                return (*colour, 1.0)
    # A playhead line crossing both lanes.
    if 0.545 <= x <= 0.565 and 0.26 <= y <= 0.74:
        return (255, 255, 255, 0.85)
    return (*bg, 1.0)


def tray_icon(x, y):
    for lane_y, turns in ((0.36, LANE_A), (0.64, LANE_B)):
        for x0, x1 in turns:
            # Stretch to the full width: the tray glyph has no background.
            if in_rrect(x, y, (x0 - 0.2) / 0.62, lane_y - 0.1, (x1 - 0.2) / 0.62, lane_y + 0.1, 0.1):
                return (0, 0, 0, 1.0)
    return None


def tray_recording_icon(x, y):
    if (x - 0.8) ** 2 + (y - 0.5) ** 2 <= 0.19 ** 2:
        return (0, 0, 0, 1.0)
    # The lanes in the left 56 %.
    return tray_icon(x / 0.56, y) if x < 0.56 else None


if __name__ == "__main__":
    png(os.path.join(HERE, "icon.png"), 512, 512, render(512, app_icon))
    png(os.path.join(HERE, "tray.png"), 44, 44, render(44, tray_icon))
    png(os.path.join(HERE, "tray-recording.png"), 44, 44, render(44, tray_recording_icon))
