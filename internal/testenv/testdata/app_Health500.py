# Test release 2.0, variant Health500, written by internal/testenv.
import os
import time

from flask import Flask, request

VERSION = "2.0"

app = Flask(__name__)


@app.route("/")
def index():
    return "version=%s\n" % VERSION


@app.route("/healthz")
def healthz():
    return "unhealthy", 500


@app.route("/pid")
def pid():
    return "pid=%d ppid=%d\n" % (os.getpid(), os.getppid())
