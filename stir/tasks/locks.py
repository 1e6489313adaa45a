"""The locks a run takes (see `stir.locks`), named after the flow run that holds them."""

from __future__ import annotations

from prefect.context import FlowRunContext

from stir.locks import process_label


def run_label() -> str:
    """Who is running: the flow run's name and id, else this process."""
    context = FlowRunContext.get()
    if context is not None and context.flow_run is not None:
        return f"flow run {context.flow_run.name} ({context.flow_run.id})"
    return process_label()
