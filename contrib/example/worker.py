"""Demo background process for `make demo` (an app of kind "process").

Logs a heartbeat line every 5 seconds until it gets SIGTERM or SIGINT, then
logs that it is stopping and exits 0, as a well-behaved worker does when the
supervisor stops it.
"""
import os
import signal
import sys
import time

INTERVAL = 5.0


def stop(signum, _frame):
    print("worker %d: got %s, stopping" % (os.getpid(), signal.Signals(signum).name), flush=True)
    sys.exit(0)


def main():
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    beat = 0
    print("worker %d: started" % os.getpid(), flush=True)
    while True:
        beat += 1
        print("worker %d: heartbeat %d" % (os.getpid(), beat), flush=True)
        time.sleep(INTERVAL)


if __name__ == "__main__":
    main()
