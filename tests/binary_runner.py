"""Run many bin/*.py commands fast: one server process imports TensorFlow once and forks
a child per command. The child runs the binary as `__main__` with its own argv, so flag
parsing, `cli.run` and the exit status are exactly those of a fresh interpreter; only
the import (10-30 s on a loaded machine) is shared.

    with BinaryRunner() as run:
        rc, out, err = run("bin/classify.py", ["--images=chelsea", "--top_k=0"])
        rc, out, err = run.code("from tfrestore.classifiers import load_classifier; ...")

`code` runs Python in a child under `cli.exit_on_user_error`: a user error exits 2
with its one-line message, as a binary would.
"""
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SERVER = r'''
import json, os, runpy, sys, tempfile, time, traceback
sys.path.insert(0, REPO)
import tfrestore  # TensorFlow, Keras and the package, once
from tfrestore import cli
out = sys.stdout
for line in sys.stdin:
    req = json.loads(line)
    files = [tempfile.TemporaryFile() for _ in range(2)]
    pid = os.fork()
    if pid == 0:
        os.dup2(files[0].fileno(), 1)
        os.dup2(files[1].fileno(), 2)
        os.chdir(req["cwd"])
        os.environ.update(req["env"])
        code = 0
        try:
            if req["script"]:
                sys.argv = [req["script"]] + req["args"]
                runpy.run_path(req["script"], run_name="__main__")
            else:
                cli.exit_on_user_error(lambda _: exec(req["code"], {}))(None)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if not isinstance(e.code, (int, type(None))):
                print(e.code, file=sys.stderr)
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush(); sys.stderr.flush()
        os._exit(code)
    deadline = time.time() + req["timeout"]
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            rc = os.waitstatus_to_exitcode(status)
            break
        if time.time() > deadline:
            os.kill(pid, 9); os.waitpid(pid, 0); rc = "timeout"
            break
        time.sleep(0.05)
    texts = []
    for f in files:
        f.seek(0); texts.append(f.read().decode("utf-8", "replace")); f.close()
    out.write(json.dumps({"rc": rc, "stdout": texts[0], "stderr": texts[1]}) + "\n")
    out.flush()
'''.replace("REPO", repr(REPO))


class BinaryRunner:
    def __init__(self, env=None):
        self.env = dict(os.environ, PYTHONPATH=REPO, **(env or {}))
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=self.env,
                                     cwd=REPO)

    def _ask(self, script, args, code, cwd, env, timeout):
        req = {"script": script and os.path.join(REPO, script), "args": list(args),
               "code": code, "cwd": cwd or REPO, "env": env or {}, "timeout": timeout}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the binary runner's server died")
        r = json.loads(line)
        return r["rc"], r["stdout"], r["stderr"]

    def __call__(self, script, args=(), cwd=None, env=None, timeout=300):
        """(exit status, stdout, stderr) of `python SCRIPT ARGS`."""
        return self._ask(script, args, None, cwd, env, timeout)

    def code(self, source, cwd=None, env=None, timeout=300):
        """(exit status, stdout, stderr) of Python `source` under cli.exit_on_user_error."""
        return self._ask(None, (), source, cwd, env, timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
