"""The stages of `pipeline.run` and `pipeline.approve`, one module each; `lab.pipeline`
lists them in order (`STAGES`, `APPROVE`). Each takes the `Run` and returns its
`StageResult`; `common` holds what several stages share (the Git server, the cluster,
the wait for Argo CD)."""
