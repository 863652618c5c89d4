"""A kubelet stand-in: one local process per Pod, for a control plane that has no nodes.

The test control plane (``tests/k8s``) runs no kubelet, so the Pods a ReplicaSet creates stay
Pending forever. :class:`Kubelet` watches the Pods that match a label selector in one
namespace and, for each one:

* starts one local process (the command the test gives, with ``POD_NAME``,
  ``POD_NAMESPACE`` and the given environment), its output in ``<log_dir>/<pod>.log``;
* marks the Pod Running and Ready through the status subresource (``ready=False`` leaves
  that to :meth:`Kubelet.mark_ready`);
* when the Pod object is deleted (or gets a deletionTimestamp) sends the process SIGTERM,
  SIGKILL after ``grace`` seconds, and (like a kubelet) finishes a graceful deletion once the
  process is gone;
* when the process exits by itself: ``on_exit="restart"`` starts it again (a container
  restart: same Pod, same name), ``on_exit="fail"`` marks the Pod Failed.

Use it as a context manager::

    with Kubelet(kubeconfig, namespace, "app.kubernetes.io/instance=reports",
                 command=[sys.executable, "-m", "my_worker"], log_dir=tmp_path) as kubelet:
        kubelet.wait_for(lambda k: len(k.running()) == 3, timeout=30)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

Command = Sequence[str] | Callable[[str], Sequence[str]]
MERGE_PATCH = "application/merge-patch+json"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Container:
    """The local process standing in for one Pod."""

    def __init__(self, pod: str, argv: Sequence[str], env: Mapping[str, str], log: Path | None):
        self.pod = pod
        self.restarts = 0
        self.deleting = False
        self.argv = list(argv)
        self.env = dict(env)
        self.log = log
        self.process = self._spawn()

    def _spawn(self) -> subprocess.Popen[bytes]:
        out: Any = subprocess.DEVNULL
        if self.log is not None:
            out = open(self.log, "ab")  # noqa: SIM115 (closed after Popen took it)
        try:
            return subprocess.Popen(
                self.argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()

    def restart(self) -> None:
        self.restarts += 1
        self.process = self._spawn()

    def signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)

    def terminate(self, grace: float) -> int | None:
        """SIGTERM, SIGKILL after ``grace``; returns the exit status."""
        self.signal(signal.SIGTERM)
        try:
            return self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                return self.process.wait(10)
        return None


class Kubelet:
    def __init__(
        self,
        kubeconfig: Path | str,
        namespace: str,
        selector: str,
        command: Command,
        *,
        env: Mapping[str, str] | None = None,
        ready: bool = True,
        on_exit: Literal["restart", "fail"] = "restart",
        grace: float = 10.0,
        log_dir: Path | None = None,
    ) -> None:
        self.namespace = namespace
        self.selector = selector
        self.command = command
        self.env = {**os.environ, **(env or {})}
        self.ready = ready
        self.on_exit = on_exit
        self.grace = grace
        self.log_dir = log_dir
        self.api_client = config.new_client_from_config(config_file=str(kubeconfig))
        self.core = client.CoreV1Api(self.api_client)
        self.containers: dict[str, _Container] = {}
        self.exits: dict[str, list[int]] = {}
        """Exit statuses per pod name, in order (restarts and the final stop)."""
        self.errors: list[str] = []
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._watch: watch.Watch | None = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> Kubelet:
        for target, name in ((self._watch_pods, "kubelet-watch"), (self._supervise, "kubelet-ps")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()
        for thread in self._threads:
            thread.join(timeout=15)
        with self._lock:
            containers = list(self.containers.values())
            self.containers.clear()
        for container in containers:
            container.deleting = True
            self._record_exit(container.pod, container.terminate(self.grace))
        self.api_client.close()

    def __enter__(self) -> Kubelet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests look at ---------------------------------------------------------------
    def running(self) -> list[str]:
        """Names of the pods whose process runs now."""
        with self._lock:
            return sorted(n for n, c in self.containers.items() if c.process.poll() is None)

    def process(self, pod: str) -> subprocess.Popen[bytes] | None:
        with self._lock:
            container = self.containers.get(pod)
            return container.process if container else None

    def wait_for(
        self, predicate: Callable[[Kubelet], bool], timeout: float, what: str = "the pods"
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return
            time.sleep(0.05)
        raise TimeoutError(
            f"timed out after {timeout:.0f} s waiting for {what}; running: {self.running()}, "
            f"errors: {self.errors[-3:]}"
        )

    def mark_ready(self, pod: str, ready: bool = True) -> None:
        """Set the Pod Running with its Ready condition (through the status subresource)."""
        status = "True" if ready else "False"
        with self._lock:
            container = self.containers.get(pod)
            restarts = container.restarts if container else 0
        body = {
            "status": {
                "phase": "Running",
                "startTime": _now(),
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": _now()},
                    {"type": "Initialized", "status": "True", "lastTransitionTime": _now()},
                    {"type": "ContainersReady", "status": status, "lastTransitionTime": _now()},
                    {"type": "Ready", "status": status, "lastTransitionTime": _now()},
                ],
                "containerStatuses": [
                    {
                        "name": "worker",
                        "image": "local-process",
                        "imageID": "",
                        "ready": ready,
                        "started": True,
                        "restartCount": restarts,
                        "state": {"running": {"startedAt": _now()}},
                    }
                ],
            }
        }
        self._patch_status(pod, body)

    def mark_failed(self, pod: str, exit_code: int) -> None:
        body = {
            "status": {
                "phase": "Failed",
                "reason": "Error",
                "message": f"the local process exited with {exit_code}",
                "conditions": [
                    {"type": "Ready", "status": "False", "lastTransitionTime": _now()},
                    {"type": "ContainersReady", "status": "False", "lastTransitionTime": _now()},
                ],
            }
        }
        self._patch_status(pod, body)

    # -- internals --------------------------------------------------------------------------
    def _patch_status(self, pod: str, body: dict[str, Any]) -> None:
        try:
            self.core.patch_namespaced_pod_status(
                pod, self.namespace, body, _content_type=MERGE_PATCH
            )
        except ApiException as exc:
            if exc.status != 404:
                self.errors.append(f"status of {pod}: {exc.status} {exc.reason}")

    def _argv(self, pod: str) -> list[str]:
        return list(self.command(pod) if callable(self.command) else self.command)

    def _sync(self, pod: Mapping[str, Any], deleted: bool) -> None:
        meta = pod.get("metadata") or {}
        name = str(meta.get("name"))
        gone = deleted or bool(meta.get("deletionTimestamp"))
        phase = (pod.get("status") or {}).get("phase")
        with self._lock:
            container = self.containers.get(name)
            if gone:
                if container is not None and not container.deleting:
                    container.deleting = True
                    threading.Thread(
                        target=self._kill, args=(container, not deleted), daemon=True
                    ).start()
                return
            if container is not None or phase in ("Succeeded", "Failed"):
                return
            env = {**self.env, "POD_NAME": name, "POD_NAMESPACE": self.namespace}
            log = self.log_dir / f"{name}.log" if self.log_dir else None
            self.containers[name] = _Container(name, self._argv(name), env, log)
        if self.ready:
            self.mark_ready(name)

    def _kill(self, container: _Container, finish_deletion: bool) -> None:
        self._record_exit(container.pod, container.terminate(self.grace))
        with self._lock:
            if self.containers.get(container.pod) is container:
                del self.containers[container.pod]
        if finish_deletion:  # what a kubelet does once the containers stopped
            with contextlib.suppress(ApiException):
                self.core.delete_namespaced_pod(
                    container.pod, self.namespace, grace_period_seconds=0
                )

    def _record_exit(self, pod: str, status: int | None) -> None:
        with self._lock:
            self.exits.setdefault(pod, []).append(-9 if status is None else status)

    def _supervise(self) -> None:
        """Restart (or fail) pods whose process exited by itself."""
        while not self._stop.wait(0.1):
            with self._lock:
                exited = [
                    c
                    for c in self.containers.values()
                    if not c.deleting and c.process.poll() is not None
                ]
            for container in exited:
                code = int(container.process.returncode)
                self._record_exit(container.pod, code)
                if self.on_exit == "restart":
                    time.sleep(0.2)
                    with self._lock:
                        if container.deleting:
                            continue
                        container.restart()
                    if self.ready:
                        self.mark_ready(container.pod)
                else:
                    with self._lock:
                        container.deleting = True
                    self.mark_failed(container.pod, code)

    def _watch_pods(self) -> None:
        while not self._stop.is_set():
            try:
                listing = self.core.list_namespaced_pod(
                    self.namespace, label_selector=self.selector, _preload_content=False
                )
                data = json.loads(listing.data)
                seen = set()
                for pod in data.get("items") or []:
                    seen.add(pod["metadata"]["name"])
                    self._sync(pod, deleted=False)
                with self._lock:
                    vanished = [n for n in self.containers if n not in seen]
                for name in vanished:
                    self._sync({"metadata": {"name": name}}, deleted=True)
                version = data["metadata"]["resourceVersion"]
                self._watch = watch.Watch()
                for event in self._watch.stream(
                    self.core.list_namespaced_pod,
                    self.namespace,
                    label_selector=self.selector,
                    resource_version=version,
                    timeout_seconds=10,
                    allow_watch_bookmarks=False,
                ):
                    if self._stop.is_set():
                        break
                    raw = event.get("raw_object") or {}
                    if event.get("type") == "ERROR" or not raw.get("metadata"):
                        break  # e.g. 410 Gone: list again
                    self._sync(raw, deleted=event.get("type") == "DELETED")
            except Exception as exc:  # the API server went away for a moment: list again
                if self._stop.is_set():
                    return
                self.errors.append(f"watch: {type(exc).__name__}: {exc}")
                time.sleep(0.5)
