"""The app's secrets (JWT secret, admin password): made here, never in git."""

from __future__ import annotations

from lab.context import Lab

APP_NAMESPACES = ("demo-dev", "demo-prod")


APP_SECRET = "demo-secrets"


def ensure_app_secrets(lab: Lab) -> str:
    values = {
        "JWT_SECRET": lab.state.secret("jwt_secret", 48),
        "ADMIN_PASSWORD": lab.state.secret("app_admin_password", 18),
        "MONITOR_SECRET_KEY": lab.state.secret("monitor_secret_key", 48),
    }
    lab.save()
    target = lab.cluster()
    for namespace in APP_NAMESPACES:
        target.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": namespace, "labels": {"istio-injection": "enabled"}},
            }
        )
        target.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {"name": APP_SECRET, "namespace": namespace},
                "stringData": values,
            }
        )
    return lab.changes.note(f"{APP_SECRET} in {', '.join(APP_NAMESPACES)}")
