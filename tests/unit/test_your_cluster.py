"""lab.your_cluster: which objects of a cluster the user brought are the lab's to remove."""

from __future__ import annotations

from datetime import UTC, datetime

from lab import your_cluster
from lab.config import Config

TAKEN, LAST_UP = "2026-12-01T10:00:00+00:00", "2026-12-01T10:06:00+00:00"


def crd(name: str, created: str | None) -> dict[str, object]:
    meta: dict[str, object] = {"name": name}
    if created is not None:
        meta["creationTimestamp"] = created
    return {"metadata": meta}


def test_objects_made_while_lab_up_ran_are_the_labs() -> None:
    made = crd("applications.argoproj.io", "2026-12-01T10:02:13Z")
    assert your_cluster.added_by_lab(made, [], TAKEN, LAST_UP)
    # what a controller made as it started, a moment after lab.up returned
    late = crd("istiod-default-validator", "2026-12-01T10:06:40Z")
    assert your_cluster.added_by_lab(late, [], TAKEN, LAST_UP)


def test_the_users_objects_are_never_the_labs() -> None:
    before = crd("certificates.cert-manager.io", "2026-11-30T08:00:00Z")
    assert not your_cluster.added_by_lab(before, [], TAKEN, LAST_UP)  # older than the baseline
    known = crd("gateways.networking.istio.io", "2026-12-01T10:03:00Z")
    assert not your_cluster.added_by_lab(known, ["gateways.networking.istio.io"], TAKEN, LAST_UP)
    later = crd("backups.velero.io", "2026-12-01T11:30:00Z")  # made after lab.up was done
    assert not your_cluster.added_by_lab(later, [], TAKEN, LAST_UP)
    assert not your_cluster.added_by_lab(crd("odd", None), [], TAKEN, LAST_UP)


def test_timestamps_from_the_client_may_be_datetimes() -> None:
    made = crd("x", None)
    made["metadata"]["creationTimestamp"] = datetime(2026, 12, 1, 10, 1, tzinfo=UTC)  # type: ignore[index]
    assert your_cluster.added_by_lab(made, [], TAKEN, LAST_UP)


def test_only_the_labs_namespaces_are_candidates() -> None:
    names = your_cluster.lab_namespaces(Config())
    assert set(names) == {"istio-system", "argocd", "gitea", "demo-dev", "demo-prod"}
