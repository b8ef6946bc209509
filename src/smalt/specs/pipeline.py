"""Pipelines as a checked graph of steps.

``inline_components`` reads the component files a pipeline names (``./train.yml``, ``file:...``),
each with its own file and lines. ``plan`` turns a pipeline job into a flat list of steps: nested
pipeline components are unfolded (a step inside ``outer`` is ``outer.inner``), every input becomes
a literal, an asset or the output of an earlier step, and every problem of the graph is reported at
once with the file and line it was written at: unknown steps or ports, type mismatches, missing
required inputs, unknown components or computes, cycles. Nothing here does I/O; the caller passes
what it knows about registered components and computes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from smalt.entities import CommandComponent, Entity, Input, Output
from smalt.entities.base import Located
from smalt.entities.io import PRIMITIVE_TYPES
from smalt.entities.job import serverless_is_local as _serverless_is_local
from smalt.entities.pipeline import (
    PARENT_BINDING,
    CommandNode,
    IfElseNode,
    PipelineComponent,
    PipelineJob,
    PipelineNode,
    RetrySettings,
    StepInput,
)
from smalt.entities.validation import Loc, format_loc
from smalt.errors import InvalidSpecError, SpecProblem
from smalt.specs.references import is_local_path, resolve_local
from smalt.specs.yaml_source import Source

Lines = dict[str, tuple[str | None, int | None]]
AnyComponent = CommandComponent | PipelineComponent
#: Finds a registered component (``azureml:train:1``, ``azureml:train@latest``); raises SmaltError.
ComponentLookup = Callable[[str], AnyComponent]


# -- reading files ---------------------------------------------------------------------------
def is_component_file(value: str) -> bool:
    return is_local_path(value) and (value.startswith("file:") or value.endswith((".yml", ".yaml")))


def line_map(source: Source, prefix: str = "") -> Lines:
    """File and line of every field path in ``source``."""
    lines: Lines = {prefix: (source.file, 1)} if source.file else {}

    def walk(node: Any, loc: Loc) -> None:
        if not isinstance(node, CommentedMap | CommentedSeq):
            return
        for key in node if isinstance(node, CommentedMap) else range(len(node)):
            # A field that `--set` added was written on no line: its parent's line stands for it.
            written = (node.lc.data or {}).get(key)
            if written is not None:
                path = format_loc((*loc, key))
                lines[f"{prefix}.{path}" if prefix else path] = (source.file, written[0] + 1)
            walk(node[key], (*loc, key))

    if source.file:
        walk(source.data, ())
    return lines


def inline_components(source: Source, load_file: Callable[[Path], Entity], problems: list[SpecProblem]) -> None:
    """Replace each ``component: ./file.yml`` of ``source``'s jobs by the component it holds."""
    for key, node in list((source.data.get("jobs") or {}).items()):
        if not isinstance(node, dict):
            continue
        ref = node.get("component")
        if isinstance(ref, dict) and "name" not in ref:
            ref["name"] = key  # an inline component is named after its step
        if not isinstance(ref, str) or not is_component_file(ref):
            continue
        path = Path(resolve_local(ref, source.base_dir))
        loc = ("jobs", key, "component")
        if not path.is_file():
            problems.append(source.problem(f"component file {str(path)!r} does not exist", loc))
            continue
        try:
            node["component"] = load_file(path)
        except InvalidSpecError as exc:
            problems.extend(exc.problems)
    top = source.data.get("component")
    if isinstance(top, str) and is_component_file(top):
        path = Path(resolve_local(top, source.base_dir))
        if not path.is_file():
            problems.append(source.problem(f"component file {str(path)!r} does not exist", ("component",)))
        else:
            try:
                source.data["component"] = load_file(path)
            except InvalidSpecError as exc:
                problems.extend(exc.problems)


#: The node types of Azure ML pipelines that smalt runs, and those it knows but does not run yet.
NODE_TYPES = ("command", "pipeline", "if_else")
AZURE_NODE_TYPES = (
    "sweep", "parallel", "spark", "automl", "import", "data_transfer", "promptflow_parallel", "do_while",
    "parallel_for",
)  # fmt: skip


def refuse_unsupported_nodes(source: Source, problems: list[SpecProblem]) -> None:
    """One line for each step of a kind smalt does not run (``jobs.score: node type 'parallel' is
    not supported yet``), instead of the keys of that kind reported as unknown; such a step is
    dropped from ``source`` so that nothing else is said about it."""
    jobs = source.data.get("jobs")
    if not isinstance(jobs, dict):
        return
    for key, node in list(jobs.items()):
        type_ = node.get("type", "command") if isinstance(node, dict) else None
        if not isinstance(type_, str) or type_ in NODE_TYPES:
            continue
        if type_ in AZURE_NODE_TYPES:
            message = f"node type '{type_}' is not supported yet; smalt runs {', '.join(NODE_TYPES)} steps"
        else:
            message = f"'{type_}' is not a node type; one of {', '.join(NODE_TYPES)}"
        problems.append(source.problem(message, ("jobs", key, "type")))
        del jobs[key]


# -- the plan --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Upstream:
    """An input bound to an output of another step."""

    step: str
    port: str


@dataclass
class Step:
    """One command step of a planned pipeline, ready to become a job once its inputs exist."""

    key: str
    component: CommandComponent
    #: port -> a literal, an Input (asset, URI or path), an Upstream, or None (an optional input left out)
    inputs: dict[str, Any]
    outputs: dict[str, Output]
    compute: str
    environment_variables: dict[str, str] = field(default_factory=dict)
    resources: dict[str, Any] | None = None
    distribution: dict[str, Any] | None = None
    timeout: int | None = None
    retry: RetrySettings | None = None
    is_deterministic: bool = True
    #: Steps that must end first: those it reads from, its run_after, and its conditions' steps.
    after: set[str] = field(default_factory=set)
    #: (condition, value): runs only if each condition (an Upstream boolean output or a literal) is value.
    when: list[tuple[Upstream | bool, bool]] = field(default_factory=list)
    #: Pipeline outputs this step's outputs are bound to: port -> pipeline output name.
    publishes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        def value(v: Any) -> Any:
            if isinstance(v, Upstream):
                return {"step": v.step, "port": v.port}
            if isinstance(v, Input):
                return {"input": v.to_dict()}
            return {"literal": v} if v is not None else None

        return {
            "key": self.key, "component": self.component.to_dict(),
            "inputs": {k: value(v) for k, v in self.inputs.items()},
            "outputs": {k: v.to_dict() for k, v in self.outputs.items()}, "compute": self.compute,
            "environment_variables": self.environment_variables, "resources": self.resources,
            "distribution": self.distribution, "timeout": self.timeout,
            "retry": self.retry.to_dict() if self.retry else None, "is_deterministic": self.is_deterministic,
            "after": sorted(self.after), "when": [[value(c), v] for c, v in self.when],
            "publishes": self.publishes,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Step:
        def value(v: Any) -> Any:
            if v is None:
                return None
            if "step" in v:
                return Upstream(v["step"], v["port"])
            if "input" in v:
                return Input.model_validate(v["input"])
            return v["literal"]

        return cls(
            key=data["key"], component=CommandComponent.model_validate(data["component"]),
            inputs={k: value(v) for k, v in data["inputs"].items()},
            outputs={k: Output.model_validate(v) for k, v in data["outputs"].items()}, compute=data["compute"],
            environment_variables=data["environment_variables"], resources=data["resources"],
            distribution=data["distribution"], timeout=data["timeout"],
            retry=RetrySettings.model_validate(data["retry"]) if data["retry"] else None,
            is_deterministic=data["is_deterministic"], after=set(data["after"]),
            when=[(value(c), v) for c, v in data["when"]], publishes=data["publishes"],
        )  # fmt: skip


@dataclass
class Plan:
    steps: dict[str, Step]
    #: Each pipeline output: the step output it is, or None when nothing is bound to it.
    outputs: dict[str, Upstream | None]


class _Scope:
    """The pipeline (or nested pipeline component) whose ``${{parent...}}`` bindings are resolved."""

    def __init__(self, owner: Located, prefix: str, inputs: dict[str, Any], declared: dict[str, Input] | None,
                 outputs: dict[str, Output]) -> None:  # fmt: skip
        self.owner = owner
        self.prefix = prefix
        self.inputs = inputs
        self.declared = declared
        self.outputs = outputs
        #: The nodes of this scope that are nested pipelines, and their outputs.
        self.nested: dict[str, list[str]] = {}


class _Planner:
    def __init__(self, lookup: ComponentLookup, computes: Collection[str], default_compute: str) -> None:
        self.lookup = lookup
        self.computes = set(computes)
        self.default_compute = default_compute
        self.problems: list[SpecProblem] = []
        self.steps: dict[str, Step] = {}
        #: Bindings to steps, resolved once every node is unfolded: (step, port or "" for run_after,
        #: scope, step name, output port, field).
        self._pending: list[tuple[Step, str, _Scope, str, str, str]] = []
        #: (scope prefix, pipeline output name) -> the step output bound to it.
        self.published: dict[tuple[str, str], Upstream] = {}
        self.root: _Scope | None = None

    def problem(self, scope: _Scope, field_path: str, message: str) -> None:
        file, line = scope.owner.where(field_path)
        self.problems.append(SpecProblem(message, field_path, file, line))

    # -- components --------------------------------------------------------------------------
    def component(self, scope: _Scope, key: str, node: CommandNode | PipelineNode) -> AnyComponent | None:
        ref = node.component
        if isinstance(ref, CommandComponent | PipelineComponent):
            return ref
        if ref is None:
            assert isinstance(node, CommandNode)
            return self._inline_command(scope, key, node)
        try:
            return self.lookup(ref)
        except Exception as exc:  # noqa: BLE001 - a lookup failure is a problem of this field
            self.problem(scope, f"jobs.{key}.component", getattr(exc, "message", str(exc)))
            return None

    def _inline_command(self, scope: _Scope, key: str, node: CommandNode) -> CommandComponent | None:
        if not node.command:
            self.problem(scope, f"jobs.{key}", "a command step needs `command` or `component`")
            return None
        inputs: dict[str, Input] = {}
        for port, value in node.inputs.items():
            inputs[port] = self._declared_input(scope, value)
        outputs = {p: (o if isinstance(o, Output) else Output()) for p, o in node.outputs.items()}
        try:
            return CommandComponent(
                name=_component_name(key), command=node.command, code=node.code, environment=node.environment,
                inputs=inputs, outputs=outputs,
            )  # fmt: skip
        except InvalidSpecError as exc:
            for p in exc.problems:
                self.problem(scope, f"jobs.{key}.{p.field}" if p.field else f"jobs.{key}", p.message)
            return None

    def _declared_input(self, scope: _Scope, value: StepInput) -> Input:
        """What an inline command's input is, from the value it is given."""
        if isinstance(value, Input):
            return Input(type=value.type, optional=value.optional, mode=value.mode)
        if isinstance(value, bool):
            return Input(type="boolean")
        if isinstance(value, int):
            return Input(type="integer")
        if isinstance(value, float):
            return Input(type="number")
        match = PARENT_BINDING.match(value)
        if match and match["group"] == "inputs" and scope.declared and match["name"] in scope.declared:
            return Input(type=scope.declared[match["name"]].type)
        if match and match["group"] == "inputs" and match["name"] in scope.inputs:
            bound = scope.inputs[match["name"]]
            return (
                self._declared_input(scope, bound) if bound is not None and not isinstance(bound, Upstream) else Input()
            )
        if match and match["step"]:
            return Input(type="uri_folder")  # the producing port's type is checked once it is known
        return Input(type="string")

    # -- unfolding ---------------------------------------------------------------------------
    def unfold(self, scope: _Scope, jobs: dict[str, Any]) -> None:
        """Plan the nodes of one scope (conditions last: they name the steps of their blocks)."""
        for key, node in jobs.items():
            if isinstance(node, PipelineNode):
                self._nested(scope, key, node)
            elif isinstance(node, CommandNode):
                self._command(scope, key, node)
        for key, node in jobs.items():
            if isinstance(node, IfElseNode):
                self._condition(scope, key, node, jobs)

    def _settings_bound(self, scope: _Scope, key: str, node: CommandNode) -> CommandNode:
        """``node`` with each setting written as a pipeline input (``compute:
        ${{parent.inputs.train_compute}}``, an environment variable, a resources or distribution
        value) replaced by that input's value, as Azure ML binds them."""

        def bound(value: Any, where: str) -> Any:
            match = PARENT_BINDING.match(value) if isinstance(value, str) else None
            if match is None:
                return value
            if match["group"] != "inputs":
                self.problem(scope, where, f"{value!r} cannot set {where.rsplit('.', 1)[-1]}; bind a pipeline "
                             "input (${{parent.inputs.<name>}})")  # fmt: skip
                return None
            if match["name"] not in scope.inputs:
                self.problem(scope, where, f"the pipeline has no input '{match['name']}'; its inputs: "
                             f"{', '.join(scope.inputs) or 'none'}")  # fmt: skip
                return None
            given = scope.inputs[match["name"]]
            if isinstance(given, Input):
                given = given.path if given.path is not None else given.default
            if given is None or isinstance(given, Upstream):
                self.problem(scope, where, f"input '{match['name']}' has no literal value to set this with")
            return given

        update: dict[str, Any] = {}
        if node.compute is not None:
            update["compute"] = bound(node.compute, f"jobs.{key}.compute")
        for name in ("environment_variables", "resources", "distribution"):
            values = getattr(node, name)
            if values:
                update[name] = {k: bound(v, f"jobs.{key}.{name}.{k}") for k, v in values.items()}
        if "environment_variables" in update:
            update["environment_variables"] = {k: str(v) for k, v in update["environment_variables"].items()}
        if isinstance(update.get("compute"), str):
            update["compute"] = _serverless_is_local(update["compute"])
        return node.model_copy(update=update)

    def _command(self, scope: _Scope, key: str, node: CommandNode) -> None:
        node = self._settings_bound(scope, key, node)
        component = self.component(scope, key, node)
        if not isinstance(component, CommandComponent):
            if component is not None:
                self.problem(scope, f"jobs.{key}.component", "a command step needs a command component, "
                             f"not a {component.type} component; write `type: pipeline` on the step")  # fmt: skip
            return
        overrides = {k: getattr(node, k) for k in ("code", "environment") if getattr(node, k) is not None}
        if node.command and node.component is not None:
            overrides["command"] = node.command
        if overrides:
            component = component.model_copy(update=overrides)
        compute = (node.compute or self.default_compute).removeprefix("azureml:")
        if compute not in self.computes:
            self.problem(scope, f"jobs.{key}.compute" if node.compute else f"jobs.{key}",
                         f"compute '{compute}' does not exist; create it with `smalt compute create --name "
                         f"{compute}` or use one of: {', '.join(sorted(self.computes))}")  # fmt: skip
        step = Step(
            key=scope.prefix + key, component=component, inputs={}, outputs={}, compute=compute,
            environment_variables={**component.environment_variables, **node.environment_variables},
            resources=node.resources or component.resources, distribution=node.distribution or component.distribution,
            timeout=node.limits.timeout if node.limits else None, retry=node.retry_settings,
            is_deterministic=component.is_deterministic if node.is_deterministic is None else node.is_deterministic,
        )  # fmt: skip
        self._bind_inputs(scope, key, step, node, component.inputs)
        self._bind_outputs(scope, key, step, node, component.outputs)
        for other in node.run_after:
            self._pending.append((step, "", scope, other, "", f"jobs.{key}.run_after"))
        self.steps[step.key] = step

    def _bind_inputs(self, scope: _Scope, key: str, step: Step, node: CommandNode | PipelineNode,
                     declared: dict[str, Input]) -> None:  # fmt: skip
        for port in node.inputs:
            if port not in declared:
                self.problem(scope, f"jobs.{key}.inputs.{port}", f"the component has no input '{port}'; its inputs: "
                             f"{', '.join(declared) or 'none'}")  # fmt: skip
        for port, spec in declared.items():
            where = f"jobs.{key}.inputs.{port}"
            value = self._value(scope, step, port, node.inputs[port], where) if port in node.inputs else None
            if value is None and spec.default is not None:
                value = spec.default
            if value is None and not spec.optional:
                self.problem(scope, where if port in node.inputs else f"jobs.{key}.inputs",
                             f"required input '{port}' has no value")  # fmt: skip
            if value is not None and not isinstance(value, Upstream):
                self._check_type(scope, where, spec, value)
            step.inputs[port] = value

    def _value(self, scope: _Scope, step: Step, port: str, value: StepInput, where: str) -> Any:
        text = value.path if isinstance(value, Input) else value
        if not isinstance(text, str):
            return value
        match = PARENT_BINDING.match(text)
        if match is None:
            if "${{" in text:
                self.problem(scope, where, f"{text!r} is not a binding this pipeline knows; write "
                             "${{parent.inputs.<name>}} or ${{parent.jobs.<step>.outputs.<port>}}")  # fmt: skip
                return None
            return value
        if match["group"] == "inputs":
            name = match["name"]
            if name not in scope.inputs and not (scope.declared and name in scope.declared):
                self.problem(scope, where, f"the pipeline has no input '{name}'; its inputs: "
                             f"{', '.join(scope.inputs) or 'none'}")  # fmt: skip
                return None
            bound = scope.inputs.get(name)
            if isinstance(bound, Input) and isinstance(value, Input) and bound.path is not None:
                return value.model_copy(update={"path": bound.path})
            return bound
        if match["group"] == "outputs" or match["port"] is None:
            self.problem(scope, where, f"{text!r} cannot feed an input; bind a step output "
                         "(${{parent.jobs.<step>.outputs.<port>}}) or a pipeline input")  # fmt: skip
            return None
        placeholder = Upstream(scope.prefix + match["step"], match["port"])
        self._pending.append((step, port, scope, match["step"], match["port"], where))
        return placeholder

    def _check_type(self, scope: _Scope, where: str, spec: Input, value: Any) -> None:
        primitive = spec.type in PRIMITIVE_TYPES
        if isinstance(value, Input):
            if primitive and value.type not in PRIMITIVE_TYPES:
                self.problem(scope, where, f"input '{where.rsplit('.', 1)[-1]}' is {_a(spec.type)} but gets "
                             f"{_a(value.type)}")  # fmt: skip
            return
        if not primitive:
            self.problem(scope, where, f"input '{where.rsplit('.', 1)[-1]}' is {_a(spec.type)} and needs a path or "
                         f"asset, not the literal {value!r}")  # fmt: skip
            return
        ok = {
            "boolean": isinstance(value, bool),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "string": not isinstance(value, bool) and isinstance(value, str | int | float),
        }[spec.type]
        if not ok:
            self.problem(scope, where, f"input '{where.rsplit('.', 1)[-1]}' is {_a(spec.type)}, not {value!r}")

    def _bind_outputs(self, scope: _Scope, key: str, step: Step, node: CommandNode | PipelineNode,
                      declared: dict[str, Output]) -> None:  # fmt: skip
        for port in node.outputs:
            if port not in declared:
                self.problem(scope, f"jobs.{key}.outputs.{port}", f"the component has no output '{port}'; its "
                             f"outputs: {', '.join(declared) or 'none'}")  # fmt: skip
        for port, spec in declared.items():
            given = node.outputs.get(port)
            settings = spec
            if isinstance(given, Output):
                settings = spec.model_copy(update=given.model_dump(exclude_unset=True, exclude={"type"}))
            elif isinstance(given, str):
                name = self._pipeline_output(scope, f"jobs.{key}.outputs.{port}", given)
                if name is not None:
                    self.published[(scope.prefix, name)] = Upstream(step.key, port)
            step.outputs[port] = settings

    def _pipeline_output(self, scope: _Scope, where: str, given: str) -> str | None:
        """The name of the pipeline output ``given`` binds (``${{parent.outputs.<name>}}``)."""
        match = PARENT_BINDING.match(given)
        if match is None or match["group"] != "outputs":
            self.problem(scope, where, f"{given!r} is not an output binding; write ${{{{parent.outputs.<name>}}}}")
            return None
        if match["name"] not in scope.outputs:
            self.problem(scope, where, f"the pipeline has no output '{match['name']}'; its outputs: "
                         f"{', '.join(scope.outputs) or 'none'}")  # fmt: skip
            return None
        return match["name"]

    def _nested(self, scope: _Scope, key: str, node: PipelineNode) -> None:
        component = self.component(scope, key, node)
        if not isinstance(component, PipelineComponent):
            if component is not None:
                self.problem(scope, f"jobs.{key}.component", "a pipeline step needs a pipeline component")
            return
        for port in node.inputs:
            if port not in component.inputs:
                self.problem(scope, f"jobs.{key}.inputs.{port}", f"the component has no input '{port}'; its inputs: "
                             f"{', '.join(component.inputs) or 'none'}")  # fmt: skip
        # Bindings of the nested pipeline's inputs to steps outside are found on a stand-in step,
        # then handed to each inner step that reads that input.
        stand_in = Step(key=scope.prefix + key, component=CommandComponent(name="stand-in", command="true"),
                        inputs={}, outputs={}, compute=self.default_compute)  # fmt: skip
        inner_inputs: dict[str, Any] = {}
        for port, spec in component.inputs.items():
            where = f"jobs.{key}.inputs.{port}"
            value = self._value(scope, stand_in, port, node.inputs[port], where) if port in node.inputs else None
            if value is None and spec.default is not None:
                value = spec.default
            if value is None and spec.path is not None:
                value = spec
            if value is None and not spec.optional:
                self.problem(scope, f"jobs.{key}.inputs", f"required input '{port}' has no value")
            inner_inputs[port] = value
        prefix = scope.prefix + key + "."
        inner = _Scope(component, prefix, inner_inputs, dict(component.inputs), dict(component.outputs))
        saved, before = self.default_compute, set(self.steps)
        if node.compute:
            self.default_compute = node.compute.removeprefix("azureml:")
        self.unfold(inner, dict(component.jobs))
        self.default_compute = saved
        made = [self.steps[k] for k in self.steps if k not in before]
        scope.nested[key] = list(component.outputs)
        for pending in [p for p in self._pending if p[0] is stand_in]:
            self._pending.remove(pending)
            placeholder = Upstream(scope.prefix + pending[3], pending[4])
            for step in made:
                for port, value in step.inputs.items():
                    if value == placeholder:
                        self._pending.append((step, port, *pending[2:]))
        for step in made:
            for other in node.run_after:
                self._pending.append((step, "", scope, other, "", f"jobs.{key}.run_after"))
        for port, given in node.outputs.items():
            if port not in component.outputs:
                self.problem(scope, f"jobs.{key}.outputs.{port}", f"the component has no output '{port}'; its "
                             f"outputs: {', '.join(component.outputs) or 'none'}")  # fmt: skip
            elif isinstance(given, str):
                name = self._pipeline_output(scope, f"jobs.{key}.outputs.{port}", given)
                found = self.published.get((prefix, port))
                if name is not None and found is not None:
                    self.published[(scope.prefix, name)] = found

    def _condition(self, scope: _Scope, key: str, node: IfElseNode, jobs: dict[str, Any]) -> None:
        condition: Upstream | bool | None = None
        where = f"jobs.{key}.condition"
        if isinstance(node.condition, bool):
            condition = node.condition
        else:
            match = PARENT_BINDING.match(node.condition)
            if match and match["group"] == "inputs":
                bound = scope.inputs.get(match["name"])
                if isinstance(bound, bool | Upstream):
                    condition = bound
                else:
                    self.problem(scope, where, f"the condition must be a boolean; input '{match['name']}' is "
                                 f"{bound!r}")  # fmt: skip
            elif match and match["step"] and match["port"]:
                condition = self._resolve_upstream(scope, match["step"], match["port"], where)
            else:
                self.problem(scope, where, f"{node.condition!r} is not a condition; write "
                             "${{parent.jobs.<step>.outputs.<boolean output>}}, an input or true/false")  # fmt: skip
        if isinstance(condition, Upstream):
            port_type = self._output_type(condition)
            if port_type is not None and port_type != "boolean":
                self.problem(scope, where, f"the condition must be a boolean output; {condition.step}.outputs."
                             f"{condition.port} is {_a(port_type)}")  # fmt: skip
        for block, value in (("true_block", True), ("false_block", False)):
            names = getattr(node, block)
            for item in [names] if isinstance(names, str) else names or []:
                match = PARENT_BINDING.match(item)
                if match is None or not match["step"] or match["port"]:
                    self.problem(
                        scope, f"jobs.{key}.{block}", f"{item!r} is not a step; write ${{{{parent.jobs.<step>}}}}"
                    )
                    continue
                name = match["step"]
                if name not in jobs:
                    self.problem(scope, f"jobs.{key}.{block}", f"there is no step '{name}'; steps: {', '.join(jobs)}")
                    continue
                prefix = scope.prefix + name
                for step in self.steps.values():
                    if condition is not None and (step.key == prefix or step.key.startswith(prefix + ".")):
                        step.when.append((condition, value))
                        if isinstance(condition, Upstream):
                            step.after.add(condition.step)

    # -- bindings between steps --------------------------------------------------------------
    def _output_type(self, ref: Upstream) -> str | None:
        step = self.steps.get(ref.step)
        output = step.outputs.get(ref.port) if step else None
        return output.type if output else None

    def _resolve_upstream(self, scope: _Scope, name: str, port: str, where: str) -> Upstream | None:
        """``parent.jobs.<name>.outputs.<port>`` in ``scope`` as the step output it is."""
        if name in scope.nested:
            if port not in scope.nested[name]:
                self.problem(scope, where, f"step '{name}' has no output '{port}'; its outputs: "
                             f"{', '.join(scope.nested[name]) or 'none'}")  # fmt: skip
                return None
            found = self.published.get((scope.prefix + name + ".", port))
            if found is None:
                self.problem(scope, where, f"output '{port}' of step '{name}' is bound to no step inside it")
            return found
        key = scope.prefix + name
        step = self.steps.get(key)
        if step is None:
            known = sorted(k[len(scope.prefix):] for k in self.steps if k.startswith(scope.prefix)
                           and "." not in k[len(scope.prefix):])  # fmt: skip
            self.problem(scope, where, f"there is no step '{name}'; steps: {', '.join(known) or 'none'}")
            return None
        if port not in step.outputs:
            self.problem(scope, where, f"step '{name}' has no output '{port}'; its outputs: "
                         f"{', '.join(step.outputs) or 'none'}")  # fmt: skip
            return None
        return Upstream(key, port)

    def link(self) -> None:
        for step, port, scope, name, out_port, where in self._pending:
            if not port:  # run_after
                if name in scope.nested or scope.prefix + name in self.steps:
                    inner = [
                        k for k in self.steps if k == scope.prefix + name or k.startswith(scope.prefix + name + ".")
                    ]
                    step.after.update(inner)
                else:
                    self.problem(scope, where, f"there is no step '{name}' to run after")
                continue
            found = self._resolve_upstream(scope, name, out_port, where)
            step.inputs[port] = found
            if found is None:
                continue
            step.after.add(found.step)
            spec = step.component.inputs.get(port)
            produced = self._output_type(found)
            if spec is not None and produced is not None and not _compatible(produced, spec.type):
                self.problem(scope, where, f"input '{port}' is {_a(spec.type)} but {name}.outputs.{out_port} is "
                             f"{_a(produced)}")  # fmt: skip

    def check_cycles(self) -> None:
        remaining = {k: set(s.after) & set(self.steps) for k, s in self.steps.items()}
        while True:
            ready = [k for k, deps in remaining.items() if not deps]
            if not ready:
                break
            for k in ready:
                del remaining[k]
            for deps in remaining.values():
                deps.difference_update(ready)
        if remaining:
            cycle = _one_cycle(remaining)
            assert self.root is not None
            self.problem(self.root, f"jobs.{cycle[0]}", f"steps {' -> '.join(cycle)} form a cycle; a step cannot "
                         "wait for itself")  # fmt: skip


def _a(type_: str | None) -> str:
    """``an integer``, ``an mltable``, ``a uri_folder`` (as they are said)."""
    return f"{'an' if (type_ or '').startswith(('i', 'ml')) else 'a'} {type_}"


def _component_name(key: str) -> str:
    return key if key[:1].isalnum() else f"step{key}"


def _compatible(produced: str, wanted: str) -> bool:
    if produced == wanted:
        return True
    folders = {"uri_folder", "mltable", "mlflow_model", "custom_model", "triton_model"}
    return produced in folders and wanted in folders and "uri_folder" in (produced, wanted)


def _one_cycle(graph: dict[str, set[str]]) -> list[str]:
    start = min(graph)
    path, node = [start], start
    while True:
        node = min(graph[node] & set(graph))
        if node in path:
            return [*path[path.index(node) :], node]
        path.append(node)


def plan(job: PipelineJob, lookup: ComponentLookup, computes: Collection[str]) -> Plan:
    """The steps of ``job``, or an InvalidSpecError with every problem of the graph."""
    default = (job.compute or job.settings.default_compute or "local").removeprefix("azureml:")
    planner = _Planner(lookup, computes, default)
    root = _Scope(job, "", dict(job.inputs), None, dict(job.outputs))
    jobs: dict[str, Any] = dict(job.jobs)
    if job.component is not None:
        if job.jobs:
            planner.problem(root, "component", "`jobs` and `component` cannot both be given; keep one")
        given = job.component
        component = _lookup_pipeline(planner, root, given) if isinstance(given, str) else given
        if component is not None:
            values = {k: job.inputs.get(k, v.default if v.default is not None else (v if v.path else None))
                      for k, v in component.inputs.items()}  # fmt: skip
            for name in job.inputs:
                if name not in component.inputs:
                    planner.problem(root, f"inputs.{name}", f"the component has no input '{name}'; its inputs: "
                                    f"{', '.join(component.inputs) or 'none'}")  # fmt: skip
            outputs = {**component.outputs, **job.outputs}
            root = _Scope(component, "", values, dict(component.inputs), outputs)
            jobs = dict(component.jobs)
    for name, value in root.inputs.items():
        if isinstance(value, str) and PARENT_BINDING.match(value):
            planner.problem(root, f"inputs.{name}", "a pipeline input cannot be bound to another binding")
    if not jobs:
        planner.problem(root, "jobs", "the pipeline has no steps; add some under `jobs`")
    planner.root = root
    planner.unfold(root, jobs)
    planner.link()
    planner.check_cycles()
    if planner.problems:
        problems = sorted(planner.problems, key=lambda p: (p.file or "", p.line or 0, p.field))
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        raise InvalidSpecError(problems, summary=f"The pipeline cannot run ({count}); nothing was queued")
    bound: dict[str, Upstream | None] = {}
    for name in root.outputs:
        found = planner.published.get(("", name))
        bound[name] = found
        if found is not None:
            step = planner.steps[found.step]
            step.publishes[found.port] = name
            # The pipeline output's settings (path, name and version to register) are the step's.
            chosen = job.outputs.get(name)
            if chosen is not None:
                update = chosen.model_dump(exclude_unset=True, exclude={"type"})
                step.outputs[found.port] = step.outputs[found.port].model_copy(update=update)
    return Plan(planner.steps, bound)


def _lookup_pipeline(planner: _Planner, scope: _Scope, ref: str) -> PipelineComponent | None:
    try:
        found = planner.lookup(ref)
    except Exception as exc:  # noqa: BLE001
        planner.problem(scope, "component", getattr(exc, "message", str(exc)))
        return None
    if not isinstance(found, PipelineComponent):
        planner.problem(scope, "component", f"{ref} is a command component; a pipeline job's `component` must be "
                        "a pipeline component")  # fmt: skip
        return None
    return found
