"""Times `lab.up` cold and warm side by side, the webhook's push→Synced latency, a
pipeline run after a one-service change, and the lab's memory once up; one run, ratios.

Targets (DESIGN.md): cold ≤ 4 min on a 4-core/16 GB laptop with images cached; warm ≤ 15 s;
memory ≤ 6 GiB; after a one-service change only that service's work is redone.

    .venv/bin/python benchmarks/lab_up.py [--keep]              a laptop with the internet
    .venv/bin/python benchmarks/lab_up.py --tier kind [--keep]  our CI machines: the kind
        tier's node image, patches and `istio_data_plane: none` (tests/kind/tier.py), and
        the pinned images pushed into the lab registry's mirror paths first

With --tier kind it also measures a bare `kind create cluster` on the same node image
(lab.up cold relative to it) and push→Synced through Gitea's webhook compared with the
refresh annotation alone (the webhook switched off for that half).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab import engine, teardown  # noqa: E402
from lab.config import Config  # noqa: E402
from lab.config import load as load_config  # noqa: E402

INVOKE = str(Path(sys.executable).parent / "invoke")


class Runner:
    def __init__(self, env: dict[str, str], root: Path = ROOT) -> None:
        self.env, self.root = env, root

    def timed(self, *args: str, check: bool = True) -> float:
        started = time.monotonic()
        result = subprocess.run(
            [INVOKE, "--search-root", str(self.root), *args],
            env=self.env, cwd=self.root, capture_output=True, text=True, timeout=3600, check=False,
        )  # fmt: skip
        took = time.monotonic() - started
        if check and result.returncode != 0:
            sys.exit(f"invoke {' '.join(args)} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
        return took


def lab_memory_bytes(cluster_name: str) -> int:
    """Memory in use by the kind node containers and the registry, from Docker's stats."""
    client = engine.client()
    total = 0
    for label in (f"io.x-k8s.kind.cluster={cluster_name}", f"{engine.LAB_LABEL}={cluster_name}"):
        for container in client.containers.list(filters={"label": label}):
            stats = container.stats(stream=False)
            total += int(stats.get("memory_stats", {}).get("usage", 0))
    return total


def tier_environment(work: Path) -> tuple[dict[str, str], object, object]:
    from tests.kind import conftest, tier

    art = tier.artifacts()
    values = tier.settings(art.node_image, istio_data_plane="none", state_dir=str(work / ".lab"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAB_")}
    env.update(tier.environment(values))
    env.update({"PATH": art.path, "KUBECONFIG": str(work / "kubeconfig"), "NO_COLOR": "1"})
    config = tier.config(art.node_image, istio_data_plane="none", state_dir=str(work / ".lab"))
    os.environ.update({"PATH": art.path, "KUBECONFIG": env["KUBECONFIG"]})
    conftest.prepare(config, art)
    return env, art, config


def bare_kind(art: object, env: dict[str, str]) -> float:
    from tests.kind import tier

    config_file = Path(tempfile.mkdtemp()) / "kind.yaml"
    config_file.write_text(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\ncontainerdConfigPatches:\n- |\n"
        + "".join(f"  {line}\n" for line in tier.CONTAINERD_PATCH.splitlines())
        + "kubeadmConfigPatches:\n- |\n"
        + "".join(f"  {line}\n" for line in tier.KUBEADM_PATCH.splitlines())
    )
    kind = str(art.kind)  # type: ignore[attr-defined]
    started = time.monotonic()
    subprocess.run(
        [kind, "create", "cluster", "--name", "bench-bare", "--image", art.node_image,  # type: ignore[attr-defined]
         "--config", str(config_file), "--wait", "120s"],
        env=env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    took = time.monotonic() - started
    subprocess.run([kind, "delete", "cluster", "--name", "bench-bare"], env=env, check=True, capture_output=True)
    return took


def push_to_synced(env: dict[str, str], config: object, *, webhook: bool) -> float:
    """Push a commit to the GitOps repository; seconds until demo-dev is at it."""
    import httpx

    from lab import argocd, k8s
    from lab.gitserver import Credentials, GitServer
    from lab.state import State

    c = config
    state = State.load(c.state_path)  # type: ignore[attr-defined]
    base = f"http://{c.bind_address}:{c.gitea_http_port}"  # type: ignore[attr-defined]
    org, repo = c.gitops_org, c.gitops_repo  # type: ignore[attr-defined]
    server = GitServer(base, Credentials(state["gitea_admin"], token=state["gitea_token"]))
    [hook] = server.list_webhooks(org, repo)
    httpx.patch(f"{base}/api/v1/repos/{org}/{repo}/hooks/{hook.id}", json={"active": webhook},
                headers={"Authorization": f"token {state['gitea_token']}"}, timeout=10).raise_for_status()  # fmt: skip
    work = Path(tempfile.mkdtemp()) / "gitops"
    url = f"http://{state['gitea_admin']}:{state['gitea_token']}@{base.split('//')[1]}/{org}/{repo}.git"
    subprocess.run(["git", "clone", "-q", url, str(work)], check=True, env=env)
    (work / "README.md").write_text((work / "README.md").read_text() + f"\nbenchmark {time.time()}\n")
    subprocess.run(["git", "-C", str(work), "commit", "-qam", "benchmark"], check=True, env=env)
    started = time.monotonic()
    subprocess.run(["git", "-C", str(work), "push", "-q", "origin", "main"], check=True, env=env)
    head = subprocess.run(["git", "-C", str(work), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip
    cluster = k8s.connect(c.kube_context)  # type: ignore[attr-defined]
    app = "demo-dev"
    if not webhook:
        cluster.resource("argoproj.io/v1alpha1", "Application").patch(
            body=argocd.refresh_annotation(), name=app, namespace=argocd.NAMESPACE,
            content_type="application/merge-patch+json",
        )  # fmt: skip
    while True:
        found = cluster.get("argoproj.io/v1alpha1", "Application", app, argocd.NAMESPACE) or {}
        if ((found.get("status") or {}).get("sync") or {}).get("revision") == head:
            break
        if time.monotonic() - started > 300:
            sys.exit("Argo CD did not reach the pushed revision within 300s")
        time.sleep(0.2)
    took = time.monotonic() - started
    if not webhook:  # put it back as lab.up made it
        httpx.patch(f"{base}/api/v1/repos/{org}/{repo}/hooks/{hook.id}", json={"active": True},
                    headers={"Authorization": f"token {state['gitea_token']}"}, timeout=10)  # fmt: skip
    return took


def drop_app_images(config: Config) -> int:
    """Remove the app images lab built here, and BuildKit's build cache (the base images
    stay, as on a laptop that has run lab.up): the next build is a cold one."""
    client = engine.client()
    tags = [t for t in teardown.built_images(client, config)
            if not t.startswith(f"{config.toolchain_repository}/")]  # fmt: skip
    for tag in tags:
        client.images.remove(tag)
    client.api.prune_builds()  # every cached step BuildKit kept, whoever built it
    return len(tags)


def one_service_change(env: dict[str, str], work: Path, config: Config) -> tuple[float, float]:
    """`pipeline.run` cold (no layer cache for the apps) on a clone of this repository,
    then after a backend change."""
    print(f"removed {drop_app_images(config)} app image tags and their layer cache")
    clone = work / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    runner = Runner({**env}, clone)
    args = ("pipeline.run", "--runner", "host", "--lenient")
    cold = runner.timed(*args)
    target = clone / "apps" / "backend" / "main.go"
    target.write_text(target.read_text() + "\n// benchmark: a one-service change\n")
    subprocess.run(["git", "-C", str(clone), "commit", "-qam", "benchmark: change the backend"],
                   check=True, env={**env, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@lab.local",
                                    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@lab.local"})  # fmt: skip
    return cold, runner.timed(*args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="leave the lab up afterwards")
    parser.add_argument("--tier", choices=("laptop", "kind"), default="laptop")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lab-bench-"))
    env = dict(os.environ)
    config = art = None
    if args.tier == "kind":
        env, art, config = tier_environment(work)
    run = Runner(env)
    run.timed("lab.down", check=False)
    bare = bare_kind(art, env) if args.tier == "kind" else None
    if args.tier == "kind":
        tier_environment(work)  # lab.down removed the registry and what it held
    cold = run.timed("lab.up")
    warm = run.timed("lab.up")
    name = os.environ.get("LAB_CLUSTER_NAME", "lab")
    memory = lab_memory_bytes(name) / 1024**3
    print(f"lab.up cold:          {cold:7.1f}s   (target ≤ 240s on 4 cores with images cached)")
    if bare is not None:
        print(f"bare kind create:     {bare:7.1f}s   lab.up cold / bare kind = {cold / bare:.2f}")
    print(f"lab.up warm:          {warm:7.1f}s   (target ≤ 15s)   warm/cold = {warm / cold:.3f}")
    print(f"lab memory:           {memory:7.2f} GiB (target ≤ 6 GiB)")
    if config is not None:
        hook = push_to_synced(env, config, webhook=True)
        annotation = push_to_synced(env, config, webhook=False)
        print(f"push→Synced webhook:  {hook:7.1f}s   refresh annotation alone: {annotation:.1f}s"
              f"   webhook/annotation = {hook / annotation:.2f}")  # fmt: skip
    settings = config if isinstance(config, Config) else load_config({}, dict(os.environ))
    cold_run, changed_run = one_service_change(env, work, settings)
    print(f"pipeline.run cold:    {cold_run:7.1f}s   after a one-service change: {changed_run:.1f}s"
          f"   changed/cold = {changed_run / cold_run:.2f}")  # fmt: skip
    if not args.keep:
        run.timed("lab.down")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
