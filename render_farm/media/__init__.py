"""Media I/O with PyAV: probe, decode frames at a fixed rate, proxies, muxing, audio stems.

Every av/FFmpeg failure is translated here into InvalidInput or NotFound with one line naming
the file; nothing raw escapes to callers.
"""
