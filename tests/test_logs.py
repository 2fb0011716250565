"""Logging set-up: py4j's resend notice is dropped, real failures are kept."""

import logging

from marketlab.logs import Py4JRetryFilter

# What py4j's GatewayClient.send_command does (java_gateway.py), compiled under its path so
# the records carry py4j's file name as they do in a job.
PY4J_CODE = compile(
    "import logging\n"
    "def resend():\n"
    "    try:\n"
    "        raise ConnectionResetError(104, 'Connection reset by peer')\n"
    "    except ConnectionResetError:\n"
    "        logging.info('Exception while sending command.', exc_info=True)\n"
    "def fail():\n"
    "    try:\n"
    "        raise ConnectionResetError(104, 'Connection reset by peer')\n"
    "    except ConnectionResetError:\n"
    "        logging.exception('Exception while sending command.')\n",
    "/venv/lib/python3.11/site-packages/py4j/java_gateway.py", "exec")


class _Keep(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_py4j_resend_notice_is_dropped_and_its_failure_kept():
    ns: dict = {}
    exec(PY4J_CODE, ns)
    root = logging.getLogger()
    handler, level = _Keep(), root.level
    handler.addFilter(Py4JRetryFilter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        ns["resend"]()
        ns["fail"]()
        logging.info("Exception while sending command.")  # the same words from elsewhere
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert [(r.levelname, r.pathname.endswith("py4j/java_gateway.py")) for r in handler.records] == [
        ("ERROR", True), ("INFO", False)]
