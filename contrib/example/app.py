"""Demo web app for `make demo`: served by Gunicorn under the supervisor.

GET /        a greeting naming the release version and the worker's pid
GET /healthz "ok" (the supervisor's health check path)

The version comes from APP_VERSION (set in supervisor.toml), so a reload
after changing it shows the new generation answering.
"""
import os

from flask import Flask

VERSION = os.environ.get("APP_VERSION", "dev")

app = Flask(__name__)


@app.route("/")
def index():
    return "Hello from the supervisor demo: version=%s pid=%d\n" % (VERSION, os.getpid())


@app.route("/healthz")
def healthz():
    return "ok\n"
