# Test release 2.0, variant ImportError, written by internal/testenv.
import os
import time

from flask import Flask, request

VERSION = "2.0"

raise RuntimeError("release " + VERSION + " fails at import (testenv ImportError)")

app = Flask(__name__)


@app.route("/")
def index():
    return "version=%s\n" % VERSION


@app.route("/healthz")
def healthz():
    return "ok"


@app.route("/pid")
def pid():
    return "pid=%d ppid=%d\n" % (os.getpid(), os.getppid())
