"""What turns the tiers (`stir.domain.tiers`) into Prefect deployments: the deployments of a work
pool (`stir deploy`, and the generated `prefect.yaml`), those of `stir serve`, the crash alerts the
server sends, and how the deployed platform stands (`status.py`, `stir status`)."""
