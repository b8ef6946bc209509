"""Where the links MLflow prints lead: ``<tracking URI>/#/experiments/<e>/runs/<r>``.

An MLflow client ends a run with "View run <name> at: <tracking URI>/#/experiments/<e>/runs/<r>"
and "View experiment at: <tracking URI>/#/experiments/<e>". The fragment never reaches a server:
the browser asks for ``/``. smalt has no MLflow UI, so ``/`` answers with a small page whose
script reads the fragment and asks again as ``/?experiment_id=<e>&run_id=<r>``; that page names
the run and how to see it (``smalt job show -n <r>``).

The page is served without the bearer token, since a browser has none: it then only repeats what
the link says. A server without a token (``smalt server`` on loopback, whose API anyone on the
machine may read) also shows the run's status, params and latest metrics, or the experiment's runs.
"""

from __future__ import annotations

from html import escape
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from smalt.errors import NotFoundError
from smalt.server.access import requires
from smalt.server.deps import Tracking
from smalt.services.tracking import Run

router = APIRouter()

#: Reads MLflow's fragment route and asks the server for the page of what it names.
_FRAGMENT_SCRIPT = """<script>
const route = /^#\\/experiments\\/([^/?]+)(?:\\/runs\\/([^/?]+))?/.exec(window.location.hash);
if (route) {
  const query = new URLSearchParams({experiment_id: decodeURIComponent(route[1])});
  if (route[2]) query.set("run_id", decodeURIComponent(route[2]));
  window.location.replace("?" + query.toString());
}
</script>"""

Id = Annotated[str | None, Query(max_length=256)]


@router.get(
    "/", include_in_schema=False, response_class=HTMLResponse, dependencies=[requires("public", scope="public")]
)
def link_page(request: Request, tracking: Tracking, run_id: Id = None, experiment_id: Id = None) -> HTMLResponse:
    readable = not request.app.state.access.enabled
    if run_id:
        return HTMLResponse(_page(f"MLflow run {run_id}", _run(tracking, run_id, readable)))
    if experiment_id:
        return HTMLResponse(_page(f"MLflow experiment {experiment_id}", _experiment(tracking, experiment_id, readable)))
    body = (
        "<p>This is a smalt tracking server: it speaks MLflow's REST protocol (<code>/api/2.0/mlflow</code>) "
        "and has no MLflow UI. A link MLflow printed (<code>…/#/experiments/&lt;id&gt;/runs/&lt;run&gt;</code>) "
        "opens the run's page here.</p>"
        "<p>Runs are smalt jobs: <code>smalt job list</code>, <code>smalt job show -n &lt;run&gt;</code>.</p>"
    )
    return HTMLResponse(_page("smalt tracking server", body, script=_FRAGMENT_SCRIPT))


def _run(tracking: Tracking, run_id: str, readable: bool) -> str:
    name = escape(run_id)
    how = (
        f"<p>See it with <code>smalt job show -n {name}</code> (its metrics' history: "
        f"<code>smalt job metrics -n {name} --key &lt;metric&gt;</code>), or from Python: "
        f'<code>mlflow.get_run("{name}")</code>.</p>'
    )
    if not readable:
        return f"<p>Run <code>{name}</code>.</p>{how}"
    try:
        run = tracking.get_run(run_id)
    except NotFoundError:
        return f"<p>There is no run <code>{name}</code> in this workspace.</p>"
    json_link = f'<p>The run <a href="api/2.0/mlflow/runs/get?run_id={quote(run_id)}">as JSON</a>.</p>'
    metrics = _values("Metrics (latest)", {m.key: str(m.value) for m in run.data.latest})
    return f"{_summary(run)}{how}{json_link}{_values('Params', run.data.params)}{metrics}"


def _summary(run: Run) -> str:
    info = run.info
    display = f" ({escape(info.run_name)})" if info.run_name != info.run_id else ""
    return (
        f"<p>Run <code>{escape(info.run_id)}</code>{display} in experiment {info.experiment_id}: "
        f"<strong>{escape(info.status)}</strong>.</p>"
    )


def _experiment(tracking: Tracking, experiment_id: str, readable: bool) -> str:
    number = escape(experiment_id)
    if not readable:
        return f"<p>Experiment {number}: see its runs with <code>smalt job list --experiment &lt;name&gt;</code>.</p>"
    try:
        experiment = tracking.get_experiment(experiment_id)
    except NotFoundError:
        return f"<p>There is no experiment {number} in this workspace.</p>"
    runs = tracking.search_runs([experiment.id], max_results=50).items
    rows = "".join(
        f'<li><a href="?experiment_id={experiment.id}&amp;run_id={quote(r.info.run_id)}">{escape(r.info.run_id)}</a> '
        f"{escape(r.info.status)}</li>"
        for r in runs
    )
    name = escape(experiment.name)
    return (
        f"<p>Experiment {experiment.id}, <strong>{name}</strong>: see its runs with "
        f"<code>smalt job list --experiment {name}</code>.</p><ul>{rows}</ul>"
    )


def _values(title: str, values: dict[str, str]) -> str:
    if not values:
        return ""
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in sorted(values.items()))
    return f"<h2>{title}</h2><table>{rows}</table>"


def _page(title: str, body: str, *, script: str = "") -> str:
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{escape(title)} · smalt</title>{script}</head>'
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
