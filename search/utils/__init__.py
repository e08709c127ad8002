"""Small helpers that search/ and the layers above share; none knows about studies or trials.

- ``files``: bounded reads, atomic writes, output paths checked before any work
- ``processes``: whether a process is alive (locks and caches left by a dead one)
- ``signals``: Ctrl-C and SIGTERM at a safe point, never inside a database write
- ``memory``: free memory of a device, the bound every planned allocation is checked against
- ``devices``: device names, memory layouts, threads and caches: the one place that asks torch about devices
"""
