#!/usr/bin/env python3
"""Render the kustomizations under deploy/kubernetes without kustomize.

    python3 deploy/kubernetes/render.py deploy/kubernetes/overlays/redis   # YAML on stdout
    python3 deploy/kubernetes/render.py DIR --core                         # only built-in kinds
    python3 deploy/kubernetes/render.py DIR --component C [--component C2] # as an overlay adding them
    python3 deploy/kubernetes/render.py DIR --compare kustomize-output.yaml

validate.sh and check_deploy.py use it so the overlays are validated offline on
machines without kustomize or kubectl (`kubectl kustomize` is used too when
present, and --compare checks both agree). It implements exactly the subset
of kustomize these files use, and refuses anything else rather than render it
wrongly: `resources` (files and directories), `components`, `labels` (pairs,
without selectors or templates), `images` (newName/newTag), `replicas`, and
`patches` holding inline JSON 6902 operations (add, replace, remove) with a
`target` of group/version/kind/name. Needs only PyYAML.
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "components", "labels", "images", "replicas", "patches"}
CRD_GROUPS = ("monitoring.coreos.com/",)


class Unsupported(Exception):
    pass


def _key(obj: dict) -> tuple[str, str, str]:
    return (obj["apiVersion"], obj["kind"], obj["metadata"]["name"])


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise Unsupported(f"JSON pointer {path!r} must start with /")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _apply_op(obj: dict, op: dict) -> None:
    parts = _pointer(op["path"])
    parent = obj
    for p in parts[:-1]:
        parent = parent[int(p)] if isinstance(parent, list) else parent[p]
    last = parts[-1]
    kind = op["op"]
    if isinstance(parent, list):
        if kind == "add":
            parent.insert(len(parent) if last == "-" else int(last), copy.deepcopy(op["value"]))
        elif kind == "replace":
            parent[int(last)] = copy.deepcopy(op["value"])
        elif kind == "remove":
            del parent[int(last)]
        else:
            raise Unsupported(f"patch op {kind!r}")
    else:
        if kind in ("add", "replace"):
            if kind == "replace" and last not in parent:
                raise KeyError(f"replace of missing {op['path']}")
            parent[last] = copy.deepcopy(op["value"])
        elif kind == "remove":
            del parent[last]
        else:
            raise Unsupported(f"patch op {kind!r}")


def _matches(obj: dict, target: dict) -> bool:
    group, _, version = obj["apiVersion"].rpartition("/")
    extra = set(target) - {"group", "version", "kind", "name"}
    if extra:
        raise Unsupported(f"patch target fields {sorted(extra)}")
    return (target.get("group", group) == group and target.get("version", version) == version
            and target.get("kind", obj["kind"]) == obj["kind"]
            and target.get("name", obj["metadata"]["name"]) == obj["metadata"]["name"])


def _pod_specs(obj: dict):
    spec = obj.get("spec") or {}
    if "template" in spec:
        yield spec["template"].get("spec") or {}


def _transform(objs: list[dict], kust: dict, where: Path) -> None:
    for patch in kust.get("patches") or []:
        if "path" in patch or "target" not in patch:
            raise Unsupported(f"{where}: only inline JSON 6902 patches with a target")
        ops = yaml.safe_load(patch["patch"])
        if not isinstance(ops, list):
            raise Unsupported(f"{where}: strategic merge patches")
        hits = [o for o in objs if _matches(o, patch["target"])]
        if not hits:
            raise KeyError(f"{where}: patch target {patch['target']} matches nothing")
        for o in hits:
            for op in ops:
                _apply_op(o, op)
    for lab in kust.get("labels") or []:
        if lab.get("includeSelectors") or lab.get("includeTemplates") or set(lab) - {
                "pairs", "includeSelectors", "includeTemplates"}:
            raise Unsupported(f"{where}: labels other than metadata-only pairs")
        for o in objs:
            o["metadata"].setdefault("labels", {}).update(lab["pairs"])
    for img in kust.get("images") or []:
        if set(img) - {"name", "newName", "newTag"}:
            raise Unsupported(f"{where}: images fields {sorted(img)}")
        for o in objs:
            for pod in _pod_specs(o):
                for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
                    name, _, tag = c["image"].partition(":")
                    if name == img["name"]:
                        c["image"] = f"{img.get('newName', name)}:{img.get('newTag', tag)}"
    for rep in kust.get("replicas") or []:
        hits = [o for o in objs if o["metadata"]["name"] == rep["name"]
                and o["kind"] in ("Deployment", "StatefulSet", "ReplicaSet")]
        if not hits:
            raise KeyError(f"{where}: replicas for {rep['name']} match nothing")
        for o in hits:
            o["spec"]["replicas"] = rep["count"]


def render(directory: Path, extra_components: list[Path] = (), _kind: str = "Kustomization") -> list[dict]:
    """The objects `kustomize build directory` outputs (in no particular order)."""
    kust = yaml.safe_load((directory / "kustomization.yaml").read_text())
    if kust.get("kind", "Kustomization") != _kind:
        raise Unsupported(f"{directory}: expected a {_kind}, found {kust.get('kind')}")
    unknown = set(kust) - SUPPORTED
    if unknown:
        raise Unsupported(f"{directory}: kustomization fields {sorted(unknown)}")
    objs: list[dict] = []
    for r in kust.get("resources") or []:
        p = (directory / r).resolve()
        if p.is_dir():
            objs += render(p)
        else:
            if directory.resolve() not in p.parents:
                raise Unsupported(f"{directory}: file {r} outside the kustomization's directory")
            objs += [d for d in yaml.safe_load_all(p.read_text()) if d is not None]
    for c in list(kust.get("components") or []) + [str(c) for c in extra_components]:
        comp_dir = (directory / c).resolve()
        comp = render_component(comp_dir, objs)
        objs = comp
    _transform(objs, kust, directory)
    keys = [_key(o) for o in objs]
    dup = {k for k in keys if keys.count(k) > 1}
    if dup:
        raise KeyError(f"{directory}: objects defined twice: {sorted(dup)}")
    return objs


def render_component(directory: Path, objs: list[dict]) -> list[dict]:
    """objs with the component in `directory` applied (its resources added, its patches run)."""
    kust = yaml.safe_load((directory / "kustomization.yaml").read_text())
    if kust.get("kind") != "Component":
        raise Unsupported(f"{directory}: not a Component")
    unknown = set(kust) - SUPPORTED
    if unknown:
        raise Unsupported(f"{directory}: component fields {sorted(unknown)}")
    out = objs + [d for r in kust.get("resources") or []
                  for d in yaml.safe_load_all((directory / r).read_text()) if d is not None]
    _transform(out, kust, directory)
    return out


def core_only(objs: list[dict]) -> list[dict]:
    """Without the Prometheus Operator's kinds (no schema for them offline)."""
    return [o for o in objs if not o["apiVersion"].startswith(CRD_GROUPS)]


def compare(ours: list[dict], theirs: list[dict]) -> list[str]:
    """Differences between two renderings, as messages (empty: the same objects)."""
    a = {_key(o): o for o in ours}
    b = {_key(o): o for o in theirs}
    msgs = [f"only in ours: {k}" for k in sorted(set(a) - set(b))]
    msgs += [f"only in theirs: {k}" for k in sorted(set(b) - set(a))]
    msgs += [f"differs: {k}" for k in sorted(set(a) & set(b)) if a[k] != b[k]]
    return msgs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("directory", type=Path)
    ap.add_argument("--component", type=Path, action="append", default=[],
                    help="also apply this component, as an overlay listing it would")
    ap.add_argument("--core", action="store_true", help="leave out the Prometheus Operator's kinds")
    ap.add_argument("--compare", type=Path, help="kustomize's output to compare with (exit 1 if different)")
    args = ap.parse_args()
    try:
        objs = render(args.directory, [c.resolve() for c in args.component])
    except (Unsupported, KeyError, IndexError, ValueError) as e:
        print(f"render.py: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if args.compare:
        theirs = [d for d in yaml.safe_load_all(args.compare.read_text()) if d is not None]
        diffs = compare(objs, theirs)
        for d in diffs:
            print(d)
        if not diffs:
            print(f"{args.directory}: {len(objs)} objects, the same as {args.compare.name}")
        return 1 if diffs else 0
    if args.core:
        objs = core_only(objs)
    yaml.safe_dump_all(objs, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
