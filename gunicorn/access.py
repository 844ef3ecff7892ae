"""Gunicorn logger class of the gunisup supervisor.

Gunicorn runs it as --logger-class gunisup_access.Logger. It is the class
Gunicorn would otherwise use (the one named by GUNISUP_LOGGER_CLASS, the
user's own --logger-class; else gunicorn.instrument.statsd.Statsd when
statsd_host is set; else gunicorn.glogging.Logger) with one addition: each
request's access() first writes one line to the pipe on descriptor
GUNISUP_ACCESS_FD, then calls the base class's access(), so the user's access
log and statsd stream are those the base class writes.

A line is ASCII fields separated by one space, ending in a newline:

    1 WORKER_PID MASTER_PID METHOD STATUS DURATION_US QUEUE_US DROPPED PATH

MASTER_PID (the worker's parent) tells which generation answered when two
share the pipe (the new master of a USR2 re-exec inherits it); QUEUE_US is
-1 without an X-Request-Start header; DROPPED counts the lines
this worker could not write since its last written one; PATH is the raw
request path without the query, cut so that a line stays under PIPE_BUF
bytes: a write to a pipe that short is atomic, so lines of several workers
never interleave. The pipe is non-blocking: a full pipe drops the line (and
counts it) rather than holding the request back. Nothing here may raise
into the request.
"""

import os
import time

_FD = -1
try:
    _FD = int(os.environ.get("GUNISUP_ACCESS_FD", "-1"))
    if _FD >= 0:
        os.set_blocking(_FD, False)
except (ValueError, OSError):
    _FD = -1

_MAX_PATH = 2048
_MAX_METHOD = 16
_dropped = 0


def _user_class():
    uri = os.environ.get("GUNISUP_LOGGER_CLASS", "")
    if not uri:
        return None
    from gunicorn import util
    return util.load_class(uri, default="gunicorn.glogging.Logger",
                           section="gunicorn.loggers")


def _base(cfg):
    user = _user_class()
    if user is not None:
        return user
    if getattr(cfg, "statsd_host", None):
        from gunicorn.instrument.statsd import Statsd
        return Statsd
    from gunicorn.glogging import Logger as Base
    return Base


def _queue_us(value, dur_us):
    """Microseconds between the proxy's X-Request-Start stamp (t=SECONDS,
    milliseconds or microseconds since the epoch) and the worker taking
    the request, or -1 when the header is not understood."""
    v = value.strip()
    if v.startswith("t="):
        v = v[2:]
    try:
        start = float(v)
    except ValueError:
        return -1
    if start > 1e15:
        start /= 1e6
    elif start > 1e12:
        start /= 1e3
    taken = time.time() - dur_us / 1e6
    q = (taken - start) * 1e6
    if q < 0:
        return 0
    if q > 3600e6:
        return -1
    return int(q)


def _clean(s, limit):
    if s.isascii() and s.isprintable() and " " not in s:
        return s[:limit]
    b = s.encode("utf-8", "replace")[:limit]
    if any(c <= 32 or c >= 127 for c in b):
        b = bytes(c if 32 < c < 127 else 63 for c in b)
    return b.decode("ascii")


def _line(resp, req, request_time):
    status = resp.status
    if isinstance(status, str):
        status = status.split(None, 1)[0]
    dur_us = (request_time.days * 86400 + request_time.seconds) * 1000000 + request_time.microseconds
    queue = -1
    for name, value in req.headers:
        if name == "X-REQUEST-START":
            queue = _queue_us(value, dur_us)
            break
    return "1 %d %d %s %s %d %d %d %s\n" % (
        os.getpid(), os.getppid(), _clean(req.method or "-", _MAX_METHOD), _clean(str(status), 3),
        dur_us, queue, _dropped, _clean(req.path or "/", _MAX_PATH) or "/")


def _write(resp, req, request_time):
    global _dropped
    if _FD < 0:
        return
    data = _line(resp, req, request_time).encode("ascii")
    try:
        os.write(_FD, data)
        _dropped = 0
    except OSError:
        _dropped += 1


class _Access(object):
    def access(self, resp, req, environ, request_time):
        try:
            _write(resp, req, request_time)
        except Exception:
            pass
        super(_Access, self).access(resp, req, environ, request_time)


class Logger(object):
    """Instantiating Logger(cfg) returns an instance of a subclass of the
    base class (see _base) whose access() also writes the line."""

    def __new__(cls, cfg):
        base = _base(cfg)
        sub = type("GunisupLogger", (_Access, base), {})
        return sub(cfg)

    @classmethod
    def install(cls):
        user = _user_class()
        if user is not None and hasattr(user, "install"):
            user.install()
