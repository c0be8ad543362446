"""Runs a command in a pseudo-terminal of the given size and prints what it
wrote there (raw, escape sequences included), then exits with its code.

    python3 run_in_pty.py COLUMNS ROWS -- COMMAND [ARGS...]
"""
import fcntl
import os
import pty
import struct
import sys
import termios


def main() -> int:
    cols, rows = int(sys.argv[1]), int(sys.argv[2])
    argv = sys.argv[sys.argv.index("--") + 1:]
    pid, fd = pty.fork()
    if pid == 0:
        # The size is set on our own terminal before the command starts, so
        # its first look already sees it.
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.execvp(argv[0], argv)
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    _, status = os.waitpid(pid, 0)
    sys.stdout.buffer.write(b"".join(chunks))
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
