"""lab.argocd: reading an Application's sync operation (shapes as Argo CD v3 writes them)."""

from __future__ import annotations

from typing import Any

from lab import argocd

OURS, OLDER = "a" * 40, "b" * 40


def app(phase: str, revision: str, resources: list[dict[str, Any]], message: str = "") -> dict:
    return {
        "status": {
            "sync": {"status": "OutOfSync", "revision": revision},
            "health": {"status": "Progressing"},
            "resources": [{"kind": "Deployment", "name": "backend-v2", "status": "OutOfSync"}],
            "operationState": {
                "phase": phase,
                "message": message,
                "operation": {"sync": {"revision": revision}},
                "syncResult": {"revision": revision, "resources": resources},
            },
        }
    }


APPLIED = [
    {"kind": "Deployment", "name": "backend-v2", "status": "Synced", "message": "configured"},
    {"kind": "Service", "name": "backend-v2", "status": "Synced", "message": "unchanged"},
]


def test_applied_while_argo_cd_waits_for_health() -> None:
    waiting = app(
        "Running", OURS, APPLIED, "waiting for healthy state of apps/Deployment/backend-v2"
    )
    assert argocd.applied(waiting, OURS)
    assert not argocd.applied(waiting, OLDER)  # another revision's operation
    assert not argocd.applied(app("Running", OURS, []), OURS)  # nothing applied yet
    assert argocd.operation_of(waiting)[:2] == ("Running", OURS)
    assert argocd.out_of_sync(waiting) == ["Deployment/backend-v2"]


def test_a_sync_argo_cd_gave_up_on_keeps_the_api_servers_words() -> None:
    rejected = [
        {
            "kind": "Service",
            "name": "broken",
            "status": "SyncFailed",
            "message": 'Service "broken" is invalid: spec.ports[0].port: Invalid value: 70000: '
            "must be between 1 and 65535, inclusive",
        }
    ]
    failed = app("Failed", OURS, rejected, "one or more objects failed to apply (retried 5 times).")
    reason = argocd.sync_failure(failed, OURS)
    assert reason and "must be between 1 and 65535" in reason and "retried 5 times" in reason
    assert not argocd.applied(failed, OURS)
    assert argocd.sync_failure(failed, OLDER) is None  # an older attempt: ours has not run
    # Argo CD retries an invalid object too (each retry waiting for the other resources
    # to be healthy), but no retry makes it valid: that fails at once, as seen in the
    # kind tier, where the retries outlasted deploy-dev's 300 s.
    retrying = app(
        "Running",
        OURS,
        [],
        "one or more synchronization tasks completed unsuccessfully, reason: Service "
        '"broken" is invalid: [spec.ports[0].port: Invalid value: 70000: must be between 1 '
        "and 65535, inclusive]",
    )
    reason = argocd.sync_failure(retrying, OURS)
    assert reason and "must be between 1 and 65535" in reason
    assert not argocd.applied(retrying, OURS)
    # A failure a retry may fix (a webhook not answering yet) waits for the retries.
    transient = app(
        "Running",
        OURS,
        [
            {
                "kind": "Gateway",
                "name": "lab",
                "status": "SyncFailed",
                "message": "Internal error "
                'occurred: failed calling webhook "validation.istio.io": connection refused',
            }
        ],
        "Retrying attempt #1 at 12:01AM: one or more objects failed to apply",
    )
    assert argocd.sync_failure(transient, OURS) is None


def test_stopping_a_sync_is_a_status_patch() -> None:
    assert argocd.terminate_operation_body() == {
        "status": {"operationState": {"phase": "Terminating"}}
    }
