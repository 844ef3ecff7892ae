# Test release 2.0, variant All500, written by internal/testenv.
import os
import time

from flask import Flask, request

VERSION = "2.0"

app = Flask(__name__)


@app.route("/", defaults={"path": ""})
@app.route("/<path:path>")
def fail(path):
    return "release %s fails (testenv All500)\n" % VERSION, 500
