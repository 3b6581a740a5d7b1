"""A throwaway RabbitMQ node on loopback, in a temporary directory, started and stopped by us.

No systemd and nothing of the system's RabbitMQ is touched: every path the node uses (data, logs,
config, plugins file, Erlang cookie via ``HOME``) is inside one temporary directory, it listens on
free loopback ports only, and it registers with an ``epmd`` we start ourselves on a free port, so
stopping it never affects another Erlang node on the machine. :meth:`LocalBroker.stop` ends exactly
the processes it started (by their pids) and checks that none of them survived.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
from pika.adapters.utils.connection_workflow import AMQPConnectorException

from shared.amazonmq import PER_QUEUE_CONSUMER_TIMEOUT_SINCE, engine_tuple, rabbitmq_conf
from shared.errors import PlatformError
from shared.orchestrate.locks import process_runs
from shared.rehearse.definitions import user_definition

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
"""Debian's real scripts (``/usr/sbin/rabbitmq-server`` would ``su rabbitmq`` and reset the env)."""
APT_INSTALL = ("apt-get", "install", "-y", "--no-install-recommends", "rabbitmq-server")
ADMIN_USER = "rehearsal-admin"
ADMIN_VHOST = "rehearsal-admin"


class BrokerUnavailable(PlatformError):
    """RabbitMQ cannot be installed or started here; the message says what to do."""

    exit_code = 1


class PortTaken(BrokerUnavailable):
    """A port chosen free was taken by another process before the node (or its epmd) bound it."""


#: What the node writes when a port it was given is in use: Erlang distribution (RabbitMQ's prelaunch
#: check of RABBITMQ_DIST_PORT), and a Ranch/Cowboy listener (AMQP, management) failing to bind.
PORT_IN_USE_MARKERS = ("dist_port_already_used", "eaddrinuse", "address already in use")
START_ATTEMPTS = 3


#: Ports the broker listens on come from below Linux's ephemeral range (32768-60999): a port the
#: kernel hands out at random could be taken by any outgoing connection -- our own readiness probes
#: included -- between choosing it and the broker binding it (seen as eaddrinuse at boot).
PORT_RANGE = (20000, 32000)


def free_port() -> int:
    import random

    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(*PORT_RANGE)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError(f"no free loopback port in {PORT_RANGE[0]}-{PORT_RANGE[1]}")


def rabbitmq_installed() -> bool:
    return (RABBITMQ_BIN / "rabbitmq-server").is_file() and shutil.which("epmd") is not None


def ensure_rabbitmq(install: bool = True, log: Any = print) -> None:
    """Install Debian's ``rabbitmq-server`` when it is missing and we may; explain otherwise."""
    if rabbitmq_installed():
        return
    can_install = install and shutil.which("apt-get") is not None and os.geteuid() == 0
    if not can_install:
        raise BrokerUnavailable(
            "RabbitMQ is not installed (no /usr/lib/rabbitmq/bin/rabbitmq-server) and this process cannot "
            "install it (needs root and apt-get). Install it with "
            "`sudo apt-get update && sudo apt-get install -y rabbitmq-server`, then run again.")
    log("rabbitmq-server is missing: installing it with apt-get (one-off, takes a minute)...")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (("apt-get", "update"), APT_INSTALL):
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BrokerUnavailable(f"`{' '.join(command)}` failed ({result.returncode}):\n"
                                    f"{(result.stderr or result.stdout)[-2000:]}")
    if not rabbitmq_installed():
        raise BrokerUnavailable("apt-get installed rabbitmq-server but /usr/lib/rabbitmq/bin/rabbitmq-server "
                                "is still missing")


class LocalBroker:
    """One RabbitMQ node: ``with LocalBroker() as broker: broker.import_definitions(...)``."""

    def __init__(self, *, start_timeout: float = 90.0, keep_dir: bool = False,
                 port_chooser: Callable[[], int] | None = None, attempts: int = START_ATTEMPTS,
                 consumer_timeout_ms: int | None = None, plugins: tuple[str, ...] = ()) -> None:
        self.start_timeout = start_timeout
        self.plugins = plugins
        """Plugins enabled besides the management plugin (e.g. ``rabbitmq_shovel``, which Amazon MQ runs)."""
        self.consumer_timeout_ms = consumer_timeout_ms
        """rabbitmq.conf's consumer_timeout (what the env's Amazon MQ broker runs with); None: RabbitMQ's default."""
        self.keep_dir = keep_dir
        self.port_chooser = port_chooser or free_port
        """Called for each port of an attempt, in this order: AMQP, distribution, epmd, management."""
        self.attempts = attempts
        self.failed_attempts: list[tuple[Path, str]] = []
        """(folder, why) of each start attempt given up because a port was taken; the folder is gone."""
        self.admin_password = secrets.token_urlsafe(24)
        self.directory: Path | None = None
        self.amqp_port = 0
        self.management_port = 0
        self.node_name = ""
        self._server: subprocess.Popen[bytes] | None = None
        self._epmd: subprocess.Popen[bytes] | None = None
        self._env: dict[str, str] = {}

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> LocalBroker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start the node. A port taken by another process between choosing and binding it (the node
        exits on ``dist_port_already_used`` or ``eaddrinuse``, our epmd exits) is retried with fresh
        ports, at most :attr:`attempts` times; each failed attempt is stopped and its folder removed first."""
        for attempt in range(1, self.attempts + 1):
            try:
                self._start_once()
                return
            except BaseException as error:
                self.stop()  # whatever the first steps made (folder, epmd) goes, also on Ctrl-C / SIGTERM
                if not isinstance(error, PortTaken) or attempt == self.attempts:
                    raise
                if self.directory is not None:
                    self.failed_attempts.append((self.directory, str(error).splitlines()[0]))

    def _start_once(self) -> None:
        ensure_rabbitmq()
        _become_subreaper()
        sweep_abandoned_directories()
        self.directory = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
        directory = self.directory
        (directory / OWNER_FILE).write_text(str(os.getpid()), encoding="utf-8")
        for sub in ("home", "mnesia", "log"):
            (directory / sub).mkdir()
        self.amqp_port, dist_port, epmd_port, self.management_port = self._choose_ports(4)
        self.node_name = f"rehearse-{os.getpid()}-{self.amqp_port}@localhost"

        # The node's own administrator and vhost, loaded at boot; only this process knows the password.
        # (A node that loads definitions at boot creates no default user or "/" vhost.)
        boot = {
            "users": [user_definition(ADMIN_USER, self.admin_password, ["administrator"])],
            "vhosts": [{"name": ADMIN_VHOST}],
            "permissions": [{"user": ADMIN_USER, "vhost": ADMIN_VHOST, "configure": ".*", "write": ".*", "read": ".*"}],
        }
        (directory / "boot-definitions.json").write_text(json.dumps(boot), encoding="utf-8")
        (directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}\n"
            f"load_definitions = {directory / 'boot-definitions.json'}\n"
            # The management API: what the Pulumi provider (and the rehearsal's in-place policy change) talks to.
            "management.tcp.ip = 127.0.0.1\n"
            f"management.tcp.port = {self.management_port}\n"
            # Queue stats (messages, effective policy) reach the management API every 0.5 s, not 5 s.
            "collect_statistics_interval = 500\n"
            "log.console = false\n"
            "log.file.level = info\n"
            # The broker-wide consumer timeout: the lines the env's broker configuration holds (RabbitMQ 3.8.15+).
            + (rabbitmq_conf(self.consumer_timeout_ms) if self.consumer_timeout_ms is not None else ""),
            encoding="utf-8")
        # Quorum queues report their stats (messages, effective policy) on each tick: 1 s instead of 5 s.
        (directory / "advanced.config").write_text("[{rabbit, [{quorum_tick_interval, 1000}]}].\n", encoding="utf-8")
        (directory / "enabled_plugins").write_text(
            f"[{','.join(('rabbitmq_management', *self.plugins))}].\n", encoding="utf-8")
        (directory / "rabbitmq-env.conf").write_text("", encoding="utf-8")

        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        self._env = {
            **inherited,
            "HOME": str(directory / "home"),  # the Erlang cookie lives (readably) here
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(directory / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(directory / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": self.node_name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "ERL_EPMD_PORT": str(epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        epmd_args, epmd_preexec = _dying_with_parent(
            [shutil.which("epmd") or "epmd", "-port", str(epmd_port), "-address", "127.0.0.1"])
        server_args, server_preexec = _dying_with_parent([str(RABBITMQ_BIN / "rabbitmq-server")])
        try:
            # Our own epmd in the foreground (our child, so we can stop and reap it by pid); the node
            # finds it through ERL_EPMD_PORT instead of starting a daemon that would outlive us.
            self._epmd = subprocess.Popen(
                epmd_args, preexec_fn=epmd_preexec,
                env=self._env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            self._wait_for_epmd(epmd_port, 60.0)
            with open(directory / "server.out", "wb") as out:
                self._server = subprocess.Popen(
                    server_args, preexec_fn=server_preexec, env=self._env, cwd=directory,
                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            self._wait_until_up()
        except BrokerUnavailable as error:
            taken = self._port_in_use_marker()
            self.stop()
            if taken is not None and not isinstance(error, PortTaken):
                raise PortTaken(f"a port of the node was taken before it bound it ({taken!r} in its log): {error}") \
                    from error
            raise
        except BaseException:
            self.stop()
            raise

    def _choose_ports(self, count: int) -> list[int]:
        """``count`` distinct ports from :attr:`port_chooser`."""
        ports: list[int] = []
        for _ in range(count * 50):
            port = self.port_chooser()
            if port not in ports:
                ports.append(port)
            if len(ports) == count:
                return ports
        raise BrokerUnavailable(f"the port chooser gave fewer than {count} distinct ports: {ports}")

    def _port_in_use_marker(self) -> str | None:
        """The first :data:`PORT_IN_USE_MARKERS` entry the node's output or logs hold (the whole files:
        the line can be far from the end), or None."""
        if self.directory is None:
            return None
        # not erl_crash.dump: megabytes, and the node's log already says it
        paths = [self.directory / "server.out", *sorted((self.directory / "log").glob("*.log"))]
        text = "\n".join(path.read_text(errors="replace").lower() for path in paths if path.is_file())
        return next((marker for marker in PORT_IN_USE_MARKERS if marker in text), None)

    def _wait_for_epmd(self, port: int, timeout: float) -> None:
        """Until our epmd listens on ``port``. A port someone else holds answers a connect as well; epmd
        then exits (status 0, silently), so its own listening socket is what counts."""
        deadline = time.monotonic() + timeout
        epmd = self._epmd
        while time.monotonic() < deadline:
            if epmd is None or epmd.poll() is not None:
                raise PortTaken(f"epmd exited ({None if epmd is None else epmd.returncode}) instead of listening on "
                                f"127.0.0.1:{port}: another process holds that port")
            if listening_inodes(port) & socket_inodes(epmd.pid):
                return
            time.sleep(0.05)
        raise BrokerUnavailable(f"epmd did not listen on 127.0.0.1:{port} within {timeout:.0f}s")

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            taken = self._port_in_use_marker()
            if taken is not None:  # a listener failed to bind: the node may keep booting without it
                raise PortTaken(f"a port of the node was taken before it bound it ({taken!r} in its log):\n"
                                f"{self.log_tail()}")
            if self._server is not None and self._server.poll() is not None:
                raise BrokerUnavailable(f"rabbitmq-server exited with {self._server.returncode} while starting:\n"
                                        f"{self.log_tail()}")
            try:
                self.admin_connection().close()
                self.management_api("GET", "/api/overview")
                return
            # AMQPConnectorException: a handshake timeout, e.g. against another process's listener on our port
            except (pika.exceptions.AMQPConnectionError, AMQPConnectorException, OSError):
                time.sleep(0.25)
        raise BrokerUnavailable(f"RabbitMQ did not accept connections within {self.start_timeout:.0f}s:\n"
                                f"{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        if self.directory is None:
            return ""
        texts = []
        for path in [self.directory / "server.out", *sorted((self.directory / "log").glob("*.log"))]:
            if path.is_file():
                texts.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(texts)

    def stop(self) -> None:
        """Stop the node and our epmd (by their pids), then remove the temporary directory."""
        if self._server is not None:
            _terminate(self._server, timeout=45.0)
            self._server = None
        if self._epmd is not None:
            _terminate(self._epmd, timeout=5.0)
            self._epmd = None
        _reap_erlang_orphans()
        if self.directory is not None:
            survivors = processes_using(self.directory)
            unexpected = [pid for pid in survivors if _command_name(pid) != "epmd"]
            for pid in survivors:  # only processes whose command line or environment names our directory
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if not self.keep_dir:
                shutil.rmtree(self.directory, ignore_errors=True)
            # An `epmd -daemon` that rabbitmqctl's VM starts for itself when it cannot reach ours is
            # expected litter (killed above); any other survivor means the node did not stop.
            if unexpected:
                raise BrokerUnavailable(f"had to kill left-over broker processes {unexpected}")

    @property
    def running(self) -> bool:
        return self._server is not None and self._server.poll() is None

    # -- access -----------------------------------------------------------------------------
    def parameters(self, username: str, password: str, vhost: str = "/") -> pika.ConnectionParameters:
        return pika.ConnectionParameters(
            host="127.0.0.1", port=self.amqp_port, virtual_host=vhost,
            credentials=pika.PlainCredentials(username, password), connection_attempts=1, socket_timeout=5,
            blocked_connection_timeout=10, heartbeat=0)

    def connect(self, username: str, password: str, vhost: str) -> pika.BlockingConnection:
        return pika.BlockingConnection(self.parameters(username, password, vhost))

    def admin_connection(self, vhost: str = ADMIN_VHOST) -> pika.BlockingConnection:
        return self.connect(ADMIN_USER, self.admin_password, vhost)

    def management_api(self, method: str, path: str, body: Any = None) -> Any:
        """One call to the node's management HTTP API as its administrator (JSON in, JSON or None out).

        ``path`` is the API path with each name already quoted (``/api/policies/<vhost>/<name>``).
        Raises OSError (urllib.error.URLError/HTTPError) when the node refuses or is not there.
        """
        url = f"http://127.0.0.1:{self.management_port}{path}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers={
            "Authorization": "Basic " + base64.b64encode(f"{ADMIN_USER}:{self.admin_password}".encode()).decode(),
            "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            payload = response.read()
        return json.loads(payload) if payload else None

    def version(self) -> tuple[int, ...]:
        """The node's RabbitMQ version, e.g. (3, 10, 8)."""
        text = str(self.management_api("GET", "/api/overview")["rabbitmq_version"])
        return engine_tuple(text)

    def rabbitmqctl(self, *args: str, timeout: float = 60.0) -> str:
        result = subprocess.run([str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node_name, *args], env=self._env,
                                capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise BrokerUnavailable(f"rabbitmqctl {' '.join(args)} failed ({result.returncode}): "
                                    f"{(result.stderr or result.stdout).strip()[-2000:]}")
        return result.stdout

    def running_consumer_timeout_ms(self) -> int | None:
        """The consumer_timeout the running node applies (None: none configured)."""
        text = self.rabbitmqctl("eval", "application:get_env(rabbit, consumer_timeout).").strip()
        found = re.fullmatch(r"\{ok,\s*(\d+)\}", text)
        return int(found.group(1)) if found else None

    def import_definitions(self, definitions: dict[str, Any]) -> None:
        """Load a definitions document into the running node (users, vhosts, permissions, topology)."""
        if self.directory is None:
            raise BrokerUnavailable("the broker is not running")
        # The administrator manages every vhost it imports (it verifies queue contents and cleans up).
        admin = [{"user": ADMIN_USER, "vhost": vhost["name"], "configure": ".*", "write": ".*", "read": ".*"}
                 for vhost in definitions.get("vhosts", [])]
        definitions = for_version(definitions, self.version())
        document = {**definitions, "permissions": [*definitions.get("permissions", []), *admin]}
        path = self.directory / f"definitions-{time.monotonic_ns()}.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        self.rabbitmqctl("import_definitions", str(path))


QUEUE_TYPE_APPLY_TO = ("quorum_queues", "classic_queues", "streams")

#: Policy keys an older node refuses (import and management API alike: "... are not recognised policy settings"),
#: with the first version that knows each. The rehearsal leaves them out on such a node and says so in its report.
POLICY_KEYS_SINCE: dict[str, tuple[int, ...]] = {"consumer-timeout": PER_QUEUE_CONSUMER_TIMEOUT_SINCE}


def apply_to_for_version(apply_to: str, version: tuple[int, ...]) -> str:
    """A policy's ``apply-to`` as a node of ``version`` accepts it: by queue type (``quorum_queues``...)
    exists from RabbitMQ 3.12 on; an older node (Debian's 3.10 here) knows only ``queues``, which
    matches the same queues in a vhost whose queues are all quorum queues."""
    return "queues" if version < (3, 12) and apply_to in QUEUE_TYPE_APPLY_TO else apply_to


def unknown_policy_keys(version: tuple[int, ...]) -> list[str]:
    """The policy keys the deployed definitions may hold that a node of ``version`` refuses."""
    return sorted(key for key, since in POLICY_KEYS_SINCE.items() if version < since)


def definition_for_version(definition: dict[str, Any], version: tuple[int, ...]) -> dict[str, Any]:
    """A policy definition without the keys a node of ``version`` refuses (:data:`POLICY_KEYS_SINCE`)."""
    unknown = unknown_policy_keys(version)
    return {key: value for key, value in definition.items() if key not in unknown}


def version_divergences(definitions: dict[str, Any], version: tuple[int, ...]) -> list[str]:
    """What a node of ``version`` runs differently from the deployed definitions (:func:`for_version`), one line
    per policy key left out: the rehearsal does not prove those on this node."""
    unknown = unknown_policy_keys(version)
    node = ".".join(str(part) for part in version)
    lines = []
    values = [*definitions.get("policies", []),
              *(p["value"] | {"name": p["name"]} for p in definitions.get("parameters", [])
                if p.get("component") == "operator_policy")]
    for policy in sorted(values, key=lambda p: str(p["name"])):
        for key in unknown:
            if key in policy.get("definition", {}):
                since = ".".join(str(part) for part in POLICY_KEYS_SINCE[key])
                lines.append(f"policy {policy['name']}: {key} {policy['definition'][key]} left out: RabbitMQ {node} "
                             f"refuses the key (known from {since}; the deployed broker applies it)")
    return lines


def for_version(definitions: dict[str, Any], version: tuple[int, ...]) -> dict[str, Any]:
    """``definitions`` as a node of ``version`` accepts them: :func:`apply_to_for_version` and
    :func:`definition_for_version` (each key left out is one of :func:`version_divergences`). Nothing else
    changes: the written definitions file keeps what the layer deploys."""
    if version >= (3, 12) and not unknown_policy_keys(version):
        return definitions

    def adapt(value: dict[str, Any]) -> dict[str, Any]:
        value = {**value, "definition": definition_for_version(value.get("definition", {}), version)}
        return {**value, "apply-to": apply_to_for_version(value["apply-to"], version)} if "apply-to" in value else value

    return {
        **definitions,
        "policies": [adapt(p) for p in definitions.get("policies", [])],
        "parameters": [{**p, "value": adapt(p["value"])} if p.get("component") == "operator_policy" else p
                       for p in definitions.get("parameters", [])],
    }


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM our child (rabbitmq-server's script stops the VM gracefully on it); SIGKILL its group if stuck."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
        return
    except subprocess.TimeoutExpired:
        pass
    # Still alive, hence not reaped: its pid is still its own. start_new_session made it the leader of
    # a process group of its own, so the group holds only what it started.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=5.0)
    except subprocess.TimeoutExpired:
        pass


DIR_PREFIX = "rehearse-rabbitmq-"
OWNER_FILE = "owner.pid"


def _dying_with_parent(argv: list[str]) -> tuple[list[str], Callable[[], None] | None]:
    """``(args, preexec_fn)`` for Popen that start ``argv`` so it gets SIGTERM when the rehearsal dies.

    util-linux's ``setpriv --pdeathsig`` sets it in the child and execs ``argv`` (same pid, so the death
    signal still names this process): no Python runs between fork and exec, which a ``preexec_fn``
    would need. In a process with threads (gRPC's, once a policy pack was spoken to) code after fork
    can deadlock on a lock another thread held (an import) or trip gRPC's fork handlers, which
    aborted rabbitmq-server under load. Without setpriv, the ``preexec_fn`` does it."""
    setpriv = shutil.which("setpriv")
    if setpriv:
        return [setpriv, "--pdeathsig", "TERM", "--", *argv], None
    return argv, _die_with_parent


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the rehearsal dies, even by SIGKILL (which no handler
    sees; nox kills a session's process that way on a second Ctrl-C). Linux PR_SET_PDEATHSIG."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def sweep_abandoned_directories() -> list[Path]:
    """Remove the temporary folders of rehearsals whose process no longer exists (killed by SIGKILL,
    before it could clean up), with any broker process still naming them. Never another live one's."""
    removed = []
    for directory in Path(tempfile.gettempdir()).glob(f"{DIR_PREFIX}*"):
        try:
            owner = int((directory / OWNER_FILE).read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            continue  # not ours to judge (an older layout, or still being created)
        if process_runs(owner):
            continue
        for pid in processes_using(directory):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    return removed


_ERLANG_HELPERS = {"inet_gethost", "erl_child_setup", "epmd", "beam.smp", "erl"}


def _become_subreaper() -> None:
    """Adopt our orphaned grandchildren (Erlang's helpers, rabbitmqctl's VM) so we can reap them.

    Otherwise they are re-parented to PID 1, which in a container often never reaps them.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _reap_erlang_orphans() -> None:
    """Reap exited Erlang helper processes adopted as our children (and nothing else: other zombie
    children belong to Popen objects that will reap them themselves)."""
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if fields.get("PPid", "").strip() == me and fields.get("State", "").startswith("Z") \
                and comm in _ERLANG_HELPERS:
            try:
                os.waitpid(int(entry.name), os.WNOHANG)
            except ChildProcessError:
                pass


def _command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def processes_using(directory: Path) -> list[int]:
    """Pids whose command line or environment names ``directory`` (ours: nobody else knows the path).

    The environment matters for an ``epmd -daemon`` that a node or rabbitmqctl may start on its own
    when ours has gone: its command line names nothing, but it inherited HOME and RABBITMQ_* paths."""
    marker = str(directory).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if "State:\tZ" in status:
            continue  # already dead, waiting to be reaped
        if marker in cmdline:
            found.append(int(entry.name))
            continue
        try:
            if marker in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # another user's process: not one of ours
    return sorted(found)


def listening_inodes(port: int) -> set[int]:
    """Socket inodes listening on TCP ``port`` of 127.0.0.1 or any address (Linux /proc/net/tcp)."""
    found: set[int] = set()
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        try:
            rows = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            address, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(address.rsplit(":", 1)[1], 16) == port:  # 0A: TCP_LISTEN
                found.add(int(inode))
    return found


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets process ``pid`` holds open."""
    found: set[int] = set()
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return found
    for descriptor in descriptors:
        with contextlib.suppress(OSError):
            target = os.readlink(descriptor)
            if target.startswith("socket:["):
                found.add(int(target[len("socket:["):-1]))
    return found
