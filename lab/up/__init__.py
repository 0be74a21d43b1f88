"""The steps of `lab.up`, one module each; `lab.lifecycle.UP` lists them in order.

Every step converges: it inspects, acts on the difference, and verifies, so re-running
`lab.up` after a failure or Ctrl-C resumes, and re-running it on an up lab changes
nothing. Each takes the `Lab` context and returns a short note of what it did.
"""

from pathlib import Path

GITOPS_DIR = Path(__file__).resolve().parent.parent.parent / "gitops"
