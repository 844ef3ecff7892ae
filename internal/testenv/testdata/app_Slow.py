# Test release 2.0, variant Slow, written by internal/testenv.
import os
import time

from flask import Flask, request

VERSION = "2.0"

app = Flask(__name__)


@app.route("/")
def index():
    ms = int(request.args.get("ms", "0"))
    time.sleep(ms / 1000.0)
    return "version=%s\n" % VERSION


@app.route("/healthz")
def healthz():
    return "ok"


@app.route("/pid")
def pid():
    return "pid=%d ppid=%d\n" % (os.getpid(), os.getppid())
